// bnn2fpga HLS library: stream data-width converter.
//
//   in  : NUM_IN beats of IN_W bits;  out : NUM_IN*IN_W/OUT_W beats of OUT_W bits.
//   A sequence of elements keeps its order: the lowest bits of a wide beat come first.
//   One of IN_W, OUT_W must divide the other (the project writer chains two converters
//   through lcm(IN_W, OUT_W) otherwise).  One II=1 loop over the wider side's beats count.
//   Down (IN_W >= OUT_W): one read per IN_W/OUT_W writes.  Up: one write per OUT_W/IN_W reads.
#ifndef BNN_DWC_H
#define BNN_DWC_H

#include "bnn_common.h"

template <unsigned IN_W, unsigned OUT_W, unsigned NUM_IN>
void StreamingDataWidthConverter(hls::stream<ap_uint<IN_W> > &in,
                                 hls::stream<ap_uint<OUT_W> > &out) {
  static_assert(IN_W % OUT_W == 0 || OUT_W % IN_W == 0,
                "one of the widths must divide the other");
  static_assert((NUM_IN * IN_W) % OUT_W == 0, "the frame must fill whole output beats");
  if (IN_W >= OUT_W) {
    const unsigned RATIO = IN_W / OUT_W;
    ap_uint<IN_W> word = 0;
    unsigned o = 0;
    for (unsigned i = 0; i < NUM_IN * RATIO; i++) {
#pragma HLS PIPELINE II=1
      if (o == 0) word = in.read();
      out.write(ap_uint<OUT_W>(word(OUT_W - 1, 0)));
      word = word >> OUT_W;
      o = (o == RATIO - 1) ? 0u : o + 1;
    }
  } else {
    const unsigned RATIO = OUT_W / IN_W;
    ap_uint<OUT_W> word = 0;
    unsigned o = 0;
    for (unsigned i = 0; i < NUM_IN; i++) {
#pragma HLS PIPELINE II=1
      word = word >> IN_W;
      word(OUT_W - 1, OUT_W - IN_W) = in.read();
      if (o == RATIO - 1) out.write(word);
      o = (o == RATIO - 1) ? 0u : o + 1;
    }
  }
}

#endif
