// bnn2fpga HLS library: thresholds on fixed-point / integer codes (IR Threshold, FINN's
// Thresholding_Batch), PE lanes per beat, as rtl/bnn_threshold.sv:
// code = #{t : x' >= T[c][t]}, x' = -x on a negated channel, else x.
//
//   in  : BEATS beats of PE IB-bit codes (signed; unsigned where IN_SIGNED = 0), beat nf
//         of a pixel = channels nf*PE + p.
//   out : the same beats of PE OB-bit codes.
//   table[PE][NF]: words of NT thresholds of TW bits (threshold j at [j*TW, (j+1)*TW)) and
//         the negate flag on top (bnn2fpga.packing.pack_fields).
// One flattened II=1 loop over numReps frames (issue-14 convention).
#ifndef BNN_THRESHOLD_H
#define BNN_THRESHOLD_H

#include "bnn_common.h"

template <unsigned PE, unsigned NF, unsigned IB, unsigned NT, unsigned TW, unsigned OB,
          unsigned BEATS, unsigned IN_SIGNED = 1>
void ThresholdUnit(hls::stream<ap_uint<PE * IB> > &in, hls::stream<ap_uint<PE * OB> > &out,
                   const ap_uint<NT * TW + 1> table[PE][NF], unsigned numReps) {
  const unsigned XW = bnn_max(IB + 1, TW);  // x, -x and every threshold
  unsigned nf = 0;
  for (unsigned i = 0; i < numReps * BEATS; i++) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=BEATS max=BEATS
    const ap_uint<PE * IB> x = in.read();
    ap_uint<PE * OB> y = 0;
    for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
      const ap_uint<NT * TW + 1> k = table[pe][nf];
      const ap_uint<IB> xb = x(pe * IB + IB - 1, pe * IB);
      const ap_int<IB + 1> xv =
          IN_SIGNED ? ap_int<IB + 1>(ap_int<IB>(xb)) : ap_int<IB + 1>(xb);
      const ap_int<XW> xs = k[NT * TW] ? ap_int<XW>(-ap_int<XW>(xv)) : ap_int<XW>(xv);
      ap_uint<OB> code = 0;
      for (unsigned t = 0; t < NT; t++) {
#pragma HLS UNROLL
        const ap_int<TW> th = k(t * TW + TW - 1, t * TW);
        if (xs >= ap_int<XW>(th)) code++;
      }
      y(pe * OB + OB - 1, pe * OB) = code;
    }
    out.write(y);
    nf = (nf == NF - 1) ? 0u : nf + 1;
  }
}

#endif
