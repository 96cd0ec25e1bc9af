"""Man pages: one per applet, groff prints no warnings, and every option an applet's --help lists
appears in its page."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import expect, run  # noqa: E402


def applets(ctx):
    out = ctx.run("help").stdout
    return re.findall(r"^  (\S+) ", out, re.M)


def page_text(path):
    """The page source with groff escapes for '-' and fonts removed."""
    text = open(path).read()
    text = text.replace("\\-", "-")
    return re.sub(r"\\f[BIRP]", "", text)


def test_every_applet_has_a_man_page(ctx):
    man = os.path.join(ctx.source_root, "man")
    expect(os.path.exists(os.path.join(man, "clusterpin.1")), "clusterpin.1 missing")
    names = applets(ctx)
    expect(len(names) >= 10, f"applet list looks wrong: {names}")
    for applet in names:
        expect(os.path.exists(os.path.join(man, f"clusterpin-{applet}.1")), f"no page for {applet}")


def test_man_pages_have_no_groff_warnings(ctx):
    groff = shutil.which("groff")
    expect(groff is not None, "groff is not installed")
    man = os.path.join(ctx.source_root, "man")
    for page in sorted(os.listdir(man)):
        if not page.endswith(".1"):
            continue
        r = subprocess.run([groff, "-man", "-ww", "-z", os.path.join(man, page)],
                           capture_output=True, text=True)
        expect(r.returncode == 0 and r.stderr == "", f"{page}: {r.stderr}")


def test_every_option_in_help_appears_in_the_man_page(ctx):
    man = os.path.join(ctx.source_root, "man")
    for applet in applets(ctx):
        help_text = ctx.run(applet, "--help").stdout
        options = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_text))
        expect(options, f"{applet} --help lists no options")
        page = page_text(os.path.join(man, f"clusterpin-{applet}.1"))
        for option in sorted(options):
            expect(re.search(re.escape(option) + r"(?![a-z0-9-])", page),
                   f"clusterpin-{applet}.1 does not document {option}")



def test_the_host_forms_of_the_error_text_are_in_clusterpin_1(ctx):
    r = ctx.run("id", "--host", "/ip4/127.0.0.1/udp/1")
    accepted = r.stderr.split("accepted: ", 1)[1].strip()
    forms = re.split(r", | or ", accepted)
    expect(len(forms) >= 8, f"forms not found in: {r.stderr}")
    page = page_text(os.path.join(ctx.source_root, "man", "clusterpin.1"))
    for form in forms:
        expect(form in page, f"clusterpin.1 does not document the --host form {form}")



# ipfs-cluster-ctl's global options: each is either taken or refused with a reason, and
# clusterpin.1 says which.
CTL_GLOBAL_OPTIONS = ["--host", "--secret", "--https", "--no-check-certificate", "--encoding",
                      "--timeout", "--debug", "--basic-auth", "--force-http"]


def test_every_ipfs_cluster_ctl_global_option_is_in_the_client_options_of_clusterpin_1(ctx):
    page = page_text(os.path.join(ctx.source_root, "man", "clusterpin.1"))
    section = re.search(r"^\.SH CLIENT OPTIONS\n(.*?)^\.SH ", page, re.M | re.S)
    expect(section is not None, "clusterpin.1 has no CLIENT OPTIONS section")
    for option in CTL_GLOBAL_OPTIONS:
        expect(re.search(re.escape(option) + r"(?![a-z0-9-])", section.group(1)),
               f"clusterpin.1 CLIENT OPTIONS does not say what becomes of {option}")

if __name__ == "__main__":
    run(globals())
