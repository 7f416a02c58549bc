// bnn2fpga HLS library: compile-time helpers shared by the units.
//
// Tool versions targeted: Vivado HLS 2020.1/2020.2 and Vitis HLS 2020.2 .. 2023.2 (C++11:
// compile with -std=c++0x or later); C simulation with g++ >= 7 and hls4ml's ap_types.
// No dynamic memory, no recursion (not even at compile time), static sizes only.
#ifndef BNN_COMMON_H
#define BNN_COMMON_H

#include "bnn_ap_types.h"

// ceil(log2(n)) for 1 <= n <= 2^24, as a flat chain (C++11 constexpr, no recursion).
constexpr unsigned bnn_clog2(unsigned n) {
  return n <= 1u ? 0u : n <= 2u ? 1u : n <= 4u ? 2u : n <= 8u ? 3u : n <= 16u ? 4u
       : n <= 32u ? 5u : n <= 64u ? 6u : n <= 128u ? 7u : n <= 256u ? 8u : n <= 512u ? 9u
       : n <= 1024u ? 10u : n <= 2048u ? 11u : n <= 4096u ? 12u : n <= 8192u ? 13u
       : n <= 16384u ? 14u : n <= 32768u ? 15u : n <= 65536u ? 16u : n <= 131072u ? 17u
       : n <= 262144u ? 18u : n <= 524288u ? 19u : n <= 1048576u ? 20u : n <= 2097152u ? 21u
       : n <= 4194304u ? 22u : n <= 8388608u ? 23u : 24u;
}

// Bits of an unsigned integer that holds 0..n (e.g. the popcount of n lanes).
constexpr unsigned bnn_ubits(unsigned n) { return bnn_clog2(n + 1u) < 1u ? 1u : bnn_clog2(n + 1u); }

constexpr unsigned bnn_max(unsigned a, unsigned b) { return a > b ? a : b; }

// Where a unit keeps an array the estimator mapped (bnn2fpga.estimate.memory_styles), as a
// template parameter: AUTO leaves it to the tool; REGISTER partitions it completely; the
// others bind it with BIND_STORAGE (Vitis HLS, which defines __VITIS_HLS__) or RESOURCE
// (Vivado HLS).  Pragma values cannot come from template parameters, so a unit selects a
// specialisation per kind (mvtu.h).
enum BnnStorage {
  BNN_STORAGE_AUTO,
  BNN_STORAGE_REGISTER,
  BNN_STORAGE_LUTRAM,
  BNN_STORAGE_BRAM,
  BNN_STORAGE_URAM
};

#endif
