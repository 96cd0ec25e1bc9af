// Multihash parsing and hashing with libsodium (SHA-256, SHA-512, BLAKE2b-256).
// Truncated digests are refused: a CID or peer id with a short digest is almost always corrupt.
#include "core/multihash.hpp"

#include <cassert>
#include <fmt/format.h>
#include <optional>
#include <sodium.h>

#include "core/sodium_init.hpp"
#include "core/varint.hpp"

namespace clusterpin {
namespace {

std::optional<HashFunction> function_of(std::uint64_t code) {
  switch (code) {
    case 0x00: return HashFunction::identity;
    case 0x12: return HashFunction::sha2_256;
    case 0x13: return HashFunction::sha2_512;
    case 0xb220: return HashFunction::blake2b_256;
    default: return std::nullopt;
  }
}

// Digest size of each function; identity has none (any length).
std::optional<std::size_t> digest_size(HashFunction function) {
  switch (function) {
    case HashFunction::identity: return std::nullopt;
    case HashFunction::sha2_256: return 32;
    case HashFunction::sha2_512: return 64;
    case HashFunction::blake2b_256: return 32;
  }
  return std::nullopt;
}

Bytes hash_with(HashFunction function, ByteView data) {
  switch (function) {
    case HashFunction::identity: return Bytes(data.begin(), data.end());
    case HashFunction::sha2_256: {
      Bytes out(crypto_hash_sha256_BYTES);
      crypto_hash_sha256(out.data(), data.data(), data.size());
      return out;
    }
    case HashFunction::sha2_512: {
      Bytes out(crypto_hash_sha512_BYTES);
      crypto_hash_sha512(out.data(), data.data(), data.size());
      return out;
    }
    case HashFunction::blake2b_256: {
      Bytes out(32);
      crypto_generichash(out.data(), out.size(), data.data(), data.size(), nullptr, 0);
      return out;
    }
  }
  assert(false && "every HashFunction is handled above");
  return {};
}

}  // namespace

std::string_view hash_function_name(HashFunction function) {
  switch (function) {
    case HashFunction::identity: return "identity";
    case HashFunction::sha2_256: return "sha2-256";
    case HashFunction::sha2_512: return "sha2-512";
    case HashFunction::blake2b_256: return "blake2b-256";
  }
  return "unknown";
}

Result<Multihash> Multihash::from_bytes(ByteView bytes) {
  Result<Varint> code = read_varint(bytes);
  if (!code) return code.error();
  std::optional<HashFunction> function = function_of(code->value);
  if (!function) {
    return make_error(fmt::format(
        "unsupported multihash function 0x{:02x} (accepted: 0x12 sha2-256, 0x13 sha2-512, "
        "0xb220 blake2b-256, 0x00 identity)",
        code->value));
  }
  Result<Varint> length = read_varint(bytes.subspan(code->length));
  if (!length) return length.error();
  std::size_t offset = code->length + length->length;
  std::size_t available = bytes.size() - offset;
  std::optional<std::size_t> expected = digest_size(*function);
  if (expected && length->value != *expected) {
    return make_error(fmt::format("digest length mismatch: {} digests are {} bytes, the multihash declares {}",
                                  hash_function_name(*function), *expected, length->value));
  }
  if (length->value > available) {
    return make_error(fmt::format("digest length mismatch: the multihash declares {} bytes but only {} follow",
                                  length->value, available));
  }
  if (length->value < available) {
    return make_error(fmt::format("trailing bytes: {} bytes after the {}-byte digest", available - length->value,
                                  length->value));
  }
  return Multihash(*function, Bytes(bytes.begin(), bytes.end()), offset);
}

Result<Multihash> Multihash::from_digest(HashFunction function, ByteView digest) {
  std::optional<std::size_t> expected = digest_size(function);
  if (expected && digest.size() != *expected) {
    return make_error(fmt::format("digest length mismatch: {} digests are {} bytes, got {}",
                                  hash_function_name(function), *expected, digest.size()));
  }
  Bytes bytes;
  append_varint(bytes, static_cast<std::uint64_t>(function));
  append_varint(bytes, digest.size());
  std::size_t offset = bytes.size();
  bytes.insert(bytes.end(), digest.begin(), digest.end());
  return Multihash(function, std::move(bytes), offset);
}

Multihash Multihash::compute(HashFunction function, ByteView data) {
  initialize_sodium();
  Bytes digest = hash_with(function, data);
  Result<Multihash> wrapped = from_digest(function, digest);
  // hash_with produces each function's full digest size, so wrapping cannot fail.
  assert(wrapped.ok());
  return std::move(wrapped).value();
}

}  // namespace clusterpin
