// CRC32C (Castagnoli, reflected polynomial 0x82f63b78): the journal's checksum (format.hpp), and
// stream_record, which checksums a record's payload in the same pass that copies it.
//
// With SSE4.2 the crc32 instruction does 8 bytes at a time, but each step waits for the one
// before (3 cycles of latency, 1 of throughput). Long inputs are therefore cut into three equal
// blocks whose CRCs run interleaved, and combined afterwards: the CRC register is linear, so
//   crc(c, A || B) = zeros_|B|(crc(c, A)) ^ crc(0, B)
// where zeros_n advances a register over n zero bytes (a 32x32 matrix over GF(2), applied here
// through four 256-entry tables built at compile time). A 1 KiB record is checksummed about twice
// as fast as by one chain. This is Mark Adler's scheme (crc32c.c, zlib licence), written anew.
// The value is the same CRC32C function either way; format_test pins it to known answers.
#include <immintrin.h>

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
                                                                  std::uint64_t word) noexcept {
  return __builtin_ia32_crc32di(crc, word);
}

inline std::uint64_t load_word(const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// What the word loop does with each 8-byte word besides checksumming it: nothing, or store it at
// the same offset of a destination with a non-temporal store.
struct ChecksumOnly {
  void operator()(std::size_t, std::uint64_t) const noexcept {}
};
struct StreamCopy {
  unsigned char* to;
  void operator()(std::size_t offset, std::uint64_t word) const noexcept {
    _mm_stream_si64(reinterpret_cast<long long*>(to + offset), static_cast<long long>(word));
  }
};

// Three chains over [done, done + block), [.. + block, ..), [.. + 2 block, ..) for as long as 3
// blocks remain, combined into `crc`.
template <class Sink>
__attribute__((target("sse4.2"))) inline std::uint64_t crc32c_three_way(
    std::uint64_t crc, const unsigned char* p, std::size_t& done, std::size_t n, std::size_t block,
    const ZerosTable& zeros, const Sink& sink) noexcept {
  while (n - done >= 3 * block) {
    std::uint64_t crc1 = 0, crc2 = 0;
    for (std::size_t i = done, end = done + block; i < end; i += 8) {
      const std::uint64_t w0 = load_word(p + i);
      const std::uint64_t w1 = load_word(p + i + block);
      const std::uint64_t w2 = load_word(p + i + 2 * block);
      crc = crc32c_word(crc, w0);
      crc1 = crc32c_word(crc1, w1);
      crc2 = crc32c_word(crc2, w2);
      sink(i, w0);
      sink(i + block, w1);
      sink(i + 2 * block, w2);
    }
    crc = zeros.apply(static_cast<std::uint32_t>(crc)) ^ static_cast<std::uint32_t>(crc1);
    crc = zeros.apply(static_cast<std::uint32_t>(crc)) ^ static_cast<std::uint32_t>(crc2);
    done += 3 * block;
  }
  return crc;
}

// The whole 8-byte words of [p, p + n); `done` ends at the first byte of the partial last word.
template <class Sink>
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_words(std::uint32_t crc32,
                                                                   const unsigned char* p,
                                                                   std::size_t n,
                                                                   std::size_t& done,
                                                                   const Sink& sink) noexcept {
  std::uint64_t crc = crc32;
  std::size_t at = 0;  // a local, not `done`: the loops below stay in registers
  if (n >= 3 * kTinyBlock) {
    crc = crc32c_three_way(crc, p, at, n, kLongBlock, kZerosLong, sink);
    crc = crc32c_three_way(crc, p, at, n, kShortBlock, kZerosShort, sink);
    crc = crc32c_three_way(crc, p, at, n, kTinyBlock, kZerosTiny, sink);
  }
  for (; n - at >= 32; at += 32) {
    const std::uint64_t w0 = load_word(p + at), w1 = load_word(p + at + 8);
    const std::uint64_t w2 = load_word(p + at + 16), w3 = load_word(p + at + 24);
    crc = crc32c_word(crc32c_word(crc32c_word(crc32c_word(crc, w0), w1), w2), w3);
    sink(at, w0);
    sink(at + 8, w1);
    sink(at + 16, w2);
    sink(at + 24, w3);
  }
  for (; n - at >= 8; at += 8) {
    const std::uint64_t w = load_word(p + at);
    crc = crc32c_word(crc, w);
    sink(at, w);
  }
  done = at;
  return static_cast<std::uint32_t>(crc);
}

// The low `count` (< 8) bytes of `word`, in memory order.
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_tail(std::uint32_t crc,
                                                                  std::uint64_t word,
                                                                  std::size_t count) noexcept {
  if (count >= 4) {
    crc = __builtin_ia32_crc32si(crc, static_cast<std::uint32_t>(word));
    word >>= 32;
    count -= 4;
  }
  if (count >= 2) {
    crc = __builtin_ia32_crc32hi(crc, static_cast<std::uint16_t>(word));
    word >>= 16;
    count -= 2;
  }
  if (count >= 1) crc = __builtin_ia32_crc32qi(crc, static_cast<std::uint8_t>(word));
  return crc;
}

__attribute__((target("sse4.2"))) std::uint32_t crc32c_by_instruction(std::uint32_t crc,
                                                                      const unsigned char* p,
                                                                      std::size_t n) noexcept {
  std::size_t done = 0;
  crc = crc32c_words(crc, p, n, done, ChecksumOnly{});
  if (done == n) return crc;
  std::uint64_t rest = 0;
  std::memcpy(&rest, p + done, n - done);
  return crc32c_tail(crc, rest, n - done);
}

// stream_record with the crc32 instruction: the header's checksummed bytes (4..31: length,
// sequence, timestamp, then type with zero flags and reserved) go into the crc from registers,
// then the payload word by word as it is copied; the header is stored last, crc included.
__attribute__((target("sse4.2"))) std::uint64_t stream_record_by_instruction(
    unsigned char* at, std::uint16_t type, std::uint64_t sequence, std::int64_t timestamp_ns,
    const unsigned char* payload, std::size_t n) noexcept {
  const auto length = static_cast<std::uint32_t>(n);
  std::uint64_t crc = __builtin_ia32_crc32si(~0u, length);
  crc = crc32c_word(crc, sequence);
  crc = crc32c_word(crc, static_cast<std::uint64_t>(timestamp_ns));
  crc = crc32c_word(crc, type);
  const StreamCopy to_payload{at + kRecordHeaderSize};
  std::size_t done = 0;
  auto c = crc32c_words(static_cast<std::uint32_t>(crc), payload, n, done, to_payload);
  if (done < n) {
    std::uint64_t rest = 0;  // the last bytes, then the zero padding up to the word's end
    std::memcpy(&rest, payload + done, n - done);
    c = crc32c_tail(c, rest, n - done);
    to_payload(done, rest);
  }
  const StreamCopy to_header{at};
  to_header(0, std::uint64_t{mask_crc(~c)} | std::uint64_t{length} << 32);
  to_header(8, sequence);
  to_header(16, static_cast<std::uint64_t>(timestamp_ns));
  to_header(24, type);
  return padded_record_size(n);
}

const bool kCpuHasSse42 = __builtin_cpu_supports("sse4.2");

}  // namespace

std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  const std::uint32_t c = ~crc;
  return ~(kCpuHasSse42 ? crc32c_by_instruction(c, p, n) : crc32c_by_table(c, p, n));
}

std::uint64_t stream_record(std::byte* at, RecordType type, std::uint64_t sequence,
                            std::int64_t timestamp_ns, std::span<const std::byte> payload) noexcept {
  if (!kCpuHasSse42) return lay_record(at, type, sequence, timestamp_ns, payload);
  return stream_record_by_instruction(reinterpret_cast<unsigned char*>(at),
                                      static_cast<std::uint16_t>(type), sequence, timestamp_ns,
                                      reinterpret_cast<const unsigned char*>(payload.data()),
                                      payload.size());
}

void stream_fence() noexcept { _mm_sfence(); }

std::uint32_t crc32c_software(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  return ~crc32c_by_table(~crc, static_cast<const unsigned char*>(data), n);
}

}  // namespace shmbus::journal
