// lz4.h: minimal stand-in for the LZ4 block API used by Verilator's FST writer, so that
// FST traces need no liblz4 development package.  It writes valid LZ4 blocks that hold
// the data as one literal run (no compression; every LZ4 decoder, e.g. GTKWave's, reads
// them).  Verilator's zlib-compressed FST blocks are unaffected.
#pragma once
#include <cstring>

static inline int LZ4_compressBound(int n) { return n + n / 255 + 16; }

static inline int LZ4_compress_default(const char* src, char* dst, int n, int capacity) {
  if (n < 0 || capacity < LZ4_compressBound(n)) return 0;
  unsigned char* o = reinterpret_cast<unsigned char*>(dst);
  int len = 0;
  if (n < 15) {
    o[len++] = static_cast<unsigned char>(n << 4);
  } else {
    o[len++] = 0xF0;
    int rest = n - 15;
    while (rest >= 255) { o[len++] = 255; rest -= 255; }
    o[len++] = static_cast<unsigned char>(rest);
  }
  std::memcpy(o + len, src, static_cast<std::size_t>(n));
  return len + n;
}
