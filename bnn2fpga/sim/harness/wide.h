// wide.h: copy an AXI-stream TDATA port of any width to/from 32-bit words (word 0 = bits
// 31:0).  Verilator maps a port to CData/SData/IData (<= 32 bits), QData (<= 64) or
// VlWide<N> (> 64); the overloads below cover each, so the harness is width-agnostic.
#pragma once
#include <cstdint>
#include "verilated.h"

template <typename T>
static inline void put_port(T& port, const uint32_t* w) {
  if (sizeof(T) > 4)
    port = static_cast<T>(static_cast<uint64_t>(w[0]) | (static_cast<uint64_t>(w[1]) << 32));
  else
    port = static_cast<T>(w[0]);
}

template <std::size_t N>
static inline void put_port(VlWide<N>& port, const uint32_t* w) {
  for (std::size_t i = 0; i < N; ++i) port[i] = w[i];
}

template <typename T>
static inline void get_port(const T& port, uint32_t* w) {
  uint64_t v = static_cast<uint64_t>(port);
  w[0] = static_cast<uint32_t>(v);
  if (sizeof(T) > 4) w[1] = static_cast<uint32_t>(v >> 32);
}

template <std::size_t N>
static inline void get_port(const VlWide<N>& port, uint32_t* w) {
  for (std::size_t i = 0; i < N; ++i) w[i] = port[i];
}
