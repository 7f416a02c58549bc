// bnn2fpga HLS library: channel concat of two streams (the plan's "concat" unit), one
// pixel per beat on every port, as the RTL's bnn_concat:
//
//   in0 : BEATS beats of W0 bits (one pixel of input 0); in1 : W1 bits;
//   out : BEATS beats of W0 + W1 bits, input 0's channels in the low bits.
// numReps frames per call, as one flattened II=1 loop.
#ifndef BNN_CONCAT_H
#define BNN_CONCAT_H

#include "bnn_common.h"

template <unsigned W0, unsigned W1, unsigned BEATS>
void StreamConcat(hls::stream<ap_uint<W0> > &in0, hls::stream<ap_uint<W1> > &in1,
                  hls::stream<ap_uint<W0 + W1> > &out, unsigned numReps) {
  for (unsigned i = 0; i < numReps * BEATS; i++) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=BEATS max=BEATS
    const ap_uint<W0> a = in0.read();
    const ap_uint<W1> b = in1.read();
    out.write((b, a));
  }
}

#endif
