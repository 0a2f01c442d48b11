// CRC32C (Castagnoli, reflected polynomial 0x82f63b78): the journal's checksum (format.hpp).
//
// With SSE4.2 the crc32 instruction does 8 bytes at a time, but each step waits for the one
// before (3 cycles of latency, 1 of throughput). Long inputs are therefore cut into three equal
// blocks whose CRCs run interleaved, and combined afterwards: the CRC register is linear, so
//   crc(c, A || B) = zeros_|B|(crc(c, A)) ^ crc(0, B)
// where zeros_n advances a register over n zero bytes (a 32x32 matrix over GF(2), applied here
// through four 256-entry tables built at compile time). A 1 KiB record is checksummed about twice
// as fast as by one chain. This is Mark Adler's scheme (crc32c.c, zlib licence), written anew.
// The value is the same CRC32C function either way; format_test pins it to known answers.
#include <array>
#include <cstdint>
#include <cstring>

#include "journal/format.hpp"

namespace shmbus::journal {

namespace {

constexpr std::uint32_t kCastagnoli = 0x82f63b78u;

// The software path, one byte at a time: only for CPUs without SSE4.2.
constexpr std::array<std::uint32_t, 256> make_crc32c_byte_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kCastagnoli : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<std::uint32_t, 256> kCrc32cByteTable = make_crc32c_byte_table();

std::uint32_t crc32c_by_table(std::uint32_t crc, const unsigned char* p, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) crc = kCrc32cByteTable[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

// --- advancing a register over zero bytes ---------------------------------------------------------

using Gf2Matrix = std::array<std::uint32_t, 32>;  // column i: the image of bit i

constexpr std::uint32_t gf2_times(const Gf2Matrix& m, std::uint32_t v) {
  std::uint32_t sum = 0;
  for (int i = 0; v != 0; ++i, v >>= 1) {
    if (v & 1) sum ^= m[static_cast<std::size_t>(i)];
  }
  return sum;
}

constexpr Gf2Matrix gf2_square(const Gf2Matrix& m) {
  Gf2Matrix sq{};
  for (std::size_t i = 0; i < 32; ++i) sq[i] = gf2_times(m, m[i]);
  return sq;
}

// The operator that advances a register over `bytes` zero bytes (`bytes` a power of two).
constexpr Gf2Matrix zeros_operator(std::size_t bytes) {
  Gf2Matrix op{};  // one zero bit: shift right, folding the polynomial in for bit 0
  op[0] = kCastagnoli;
  for (std::size_t i = 1; i < 32; ++i) op[i] = 1u << (i - 1);
  for (int i = 0; i < 3; ++i) op = gf2_square(op);  // 2, 4, 8 bits: one zero byte
  for (std::size_t n = bytes; n > 1; n >>= 1) op = gf2_square(op);
  return op;
}

// The operator applied a byte of the register at a time.
struct ZerosTable {
  std::array<std::array<std::uint32_t, 256>, 4> by_byte;

  std::uint32_t apply(std::uint32_t crc) const noexcept {
    return by_byte[0][crc & 0xff] ^ by_byte[1][(crc >> 8) & 0xff] ^
           by_byte[2][(crc >> 16) & 0xff] ^ by_byte[3][crc >> 24];
  }
};

constexpr ZerosTable make_zeros_table(std::size_t bytes) {
  const Gf2Matrix op = zeros_operator(bytes);
  ZerosTable t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    for (std::uint32_t k = 0; k < 4; ++k) t.by_byte[k][b] = gf2_times(op, b << (8 * k));
  }
  return t;
}

// Block sizes of the three interleaved chains (powers of two, multiples of 8): a 1 KiB record
// is 768 + 192 + the rest; big payloads go through 3 x 4 KiB blocks.
constexpr std::size_t kLongBlock = 4096, kShortBlock = 256, kTinyBlock = 64;
constexpr ZerosTable kZerosLong = make_zeros_table(kLongBlock);
constexpr ZerosTable kZerosShort = make_zeros_table(kShortBlock);
constexpr ZerosTable kZerosTiny = make_zeros_table(kTinyBlock);

__attribute__((target("sse4.2"))) inline std::uint64_t crc32c_word(std::uint64_t crc,
                                                                  const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return __builtin_ia32_crc32di(crc, v);
}

// Three chains over [p, p + block), [p + block, ..), [p + 2 block, ..) for as long as 3 blocks
// remain, combined into `crc`.
__attribute__((target("sse4.2"))) inline std::uint64_t crc32c_three_way(
    std::uint64_t crc, const unsigned char*& p, std::size_t& n, std::size_t block,
    const ZerosTable& zeros) noexcept {
  while (n >= 3 * block) {
    std::uint64_t crc1 = 0, crc2 = 0;
    for (const unsigned char* end = p + block; p < end; p += 8) {
      crc = crc32c_word(crc, p);
      crc1 = crc32c_word(crc1, p + block);
      crc2 = crc32c_word(crc2, p + 2 * block);
    }
    crc = zeros.apply(static_cast<std::uint32_t>(crc)) ^ static_cast<std::uint32_t>(crc1);
    crc = zeros.apply(static_cast<std::uint32_t>(crc)) ^ static_cast<std::uint32_t>(crc2);
    p += 2 * block;
    n -= 3 * block;
  }
  return crc;
}

__attribute__((target("sse4.2"))) std::uint32_t crc32c_by_instruction(std::uint32_t crc32,
                                                                      const unsigned char* p,
                                                                      std::size_t n) noexcept {
  std::uint64_t crc = crc32;
  if (n >= 3 * kTinyBlock) {
    crc = crc32c_three_way(crc, p, n, kLongBlock, kZerosLong);
    crc = crc32c_three_way(crc, p, n, kShortBlock, kZerosShort);
    crc = crc32c_three_way(crc, p, n, kTinyBlock, kZerosTiny);
  }
  for (; n >= 8; n -= 8, p += 8) crc = crc32c_word(crc, p);
  auto c = static_cast<std::uint32_t>(crc);
  if (n >= 4) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    c = __builtin_ia32_crc32si(c, v);
    p += 4;
    n -= 4;
  }
  for (; n > 0; --n) c = __builtin_ia32_crc32qi(c, *p++);
  return c;
}

const bool kCpuHasSse42 = __builtin_cpu_supports("sse4.2");

}  // namespace

std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  const std::uint32_t c = ~crc;
  return ~(kCpuHasSse42 ? crc32c_by_instruction(c, p, n) : crc32c_by_table(c, p, n));
}

std::uint32_t crc32c_software(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  return ~crc32c_by_table(~crc, static_cast<const unsigned char*>(data), n);
}

}  // namespace shmbus::journal
