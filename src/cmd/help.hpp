// The general help text and the `help` applet.
#pragma once

#include <cstdio>

namespace clusterpin::cmd {

void print_general_help(std::FILE* out);
int run_help(int argc, char** argv);

}  // namespace clusterpin::cmd
