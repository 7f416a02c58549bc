// bnn2fpga HLS library: balanced adder tree and the XNOR-popcount built on it.
//
//   AdderTree<N>(v)  sum of N values: N-1 two-input adders in ceil(log2 N) levels; level l adds
//                    v[i + 2^l] into v[i] for i a multiple of 2^(l+1).  All loops unroll fully.
//   Popcount<N>(x)   the same tree over the N bits of a word.
// Why explicit: left to itself, HLS turns a loop of 1-bit products into a linear adder chain
// (depth N) or DSP MACs.  The nodes share the type of the root; HLS trims the bits that are
// provably zero at the lower levels (a sum of two 1-bit values needs 2 bits, ...).
#ifndef BNN_ADDER_TREE_H
#define BNN_ADDER_TREE_H

#include "bnn_common.h"

template <unsigned N, typename T>
T AdderTree(T (&v)[N]) {
#pragma HLS INLINE
#pragma HLS ARRAY_PARTITION variable=v complete dim=1
  const unsigned LEVELS = bnn_clog2(N);
  for (unsigned l = 0; l < LEVELS; l++) {
#pragma HLS UNROLL
    for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
      const unsigned half = 1u << l;
      if (i % (2 * half) == 0 && i + half < N) v[i] += v[i + half];
    }
  }
  return v[0];
}

template <unsigned N>
ap_uint<bnn_ubits(N)> Popcount(const ap_uint<N> &x) {
#pragma HLS INLINE
  ap_uint<bnn_ubits(N)> v[N];
#pragma HLS ARRAY_PARTITION variable=v complete dim=1
  for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
    v[i] = x[i];
  }
  return AdderTree<N>(v);
}

#endif
