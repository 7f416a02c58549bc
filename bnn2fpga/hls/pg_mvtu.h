// bnn2fpga HLS library: FracBNN's two-pass precision-gated convolution unit (ir.PGConv2D).
//
//   MW = fan-in, MH = output channels; PE output lanes, SIMD input lanes; NF = MH/PE neuron
//   folds, SF = MW/SIMD synapse folds; a group = one output pixel x the PE lanes of fold nf.
//   in  : PIXELS * SF beats per frame of SIMD 2-bit codes q (code i at bits [2i, 2i+2)); the
//         MSB plane is q[1], the LSB plane q[0].  MASKED: bit 2*SIMD is the sliding window's
//         valid flag (0 = padded tap: the beat adds exactly 0 to both planes).  Read in the
//         MSB pass of fold 0, kept in inputBuf[SF] for the LSB pass and the folds nf > 0.
//   out : PIXELS * NF beats of PE*OB bits, lane p = channel nf*PE + p: the MVTU's activation
//         (mvtu.h: ThresholdActivation / AccumulatorOutput) of acc = 2M + g*L.
//   weights[PE][NF*SF]: as the MVTU's (packing.weight_memory); gates[PE][NF]: the gate
//         thresholds G (g = [M >= G], channel nf*PE + pe).
//
// Per group: the MSB pass (SF iterations, M = XNOR-popcount of the MSB bits); on its last
// iteration the gates are known, and the LSB pass (SF more iterations over the LSB bits,
// acc = 2M + g*L) runs only if any gate of the group is on; otherwise acc = 2M and the next
// group starts in the next iteration.  The loop runs while groups remain: its trip count is
// the data's (numReps * PIXELS * NF * SF plus SF per gated group), not a masked full pass.
#ifndef BNN_PG_MVTU_H
#define BNN_PG_MVTU_H

#include "mvtu.h"

template <unsigned MW, unsigned MH, unsigned SIMD, unsigned PE, unsigned PIXELS,
          unsigned ACC_W, bool MASKED, class Act>
void PrecisionGatedMVTU(hls::stream<ap_uint<2 * SIMD + (MASKED ? 1 : 0)> > &in,
                        hls::stream<ap_uint<PE * Act::OB> > &out,
                        const ap_uint<SIMD> weights[PE][(MH / PE) * (MW / SIMD)],
                        const ap_int<ACC_W> gates[PE][MH / PE], const Act &act,
                        unsigned numReps) {
  static_assert(MW % SIMD == 0, "SIMD must divide the fan-in (MW)");
  static_assert(MH % PE == 0, "PE must divide the output channels (MH)");
  const unsigned NF = MH / PE;
  const unsigned SF = MW / SIMD;
  const unsigned IN_W = 2 * SIMD + (MASKED ? 1 : 0);
  const unsigned MSB_ITER = PIXELS * NF * SF;      // every gate off
  const unsigned ALL_ITER = 2 * MSB_ITER;          // every gate on
  (void)MSB_ITER;  // read only by the LOOP_TRIPCOUNT pragma
  (void)ALL_ITER;
  typedef XnorDot<SIMD, MASKED> Dot;

  ap_uint<IN_W> inputBuf[SF];
  ap_int<ACC_W> acc[PE];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=1
  bool gate[PE];
#pragma HLS ARRAY_PARTITION variable=gate complete dim=1

  const unsigned groups = numReps * PIXELS * NF;
  unsigned done = 0, nf = 0, sf = 0;
  bool lsb = false;
  while (done < groups) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=MSB_ITER max=ALL_ITER
    ap_uint<IN_W> x;
    if (!lsb && nf == 0) {
      x = in.read();
      inputBuf[sf] = x;
    } else {
      x = inputBuf[sf];
    }
    ap_uint<Dot::IN_W> plane = 0;
    for (unsigned i = 0; i < SIMD; i++) {
#pragma HLS UNROLL
      plane[i] = lsb ? x[2 * i] : x[2 * i + 1];
    }
    if (MASKED) plane[Dot::IN_W - 1] = x[IN_W - 1];
    const bool last = sf == SF - 1;
    bool any = false;
    for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
      const typename Dot::term_t d = Dot::dot(plane, weights[pe][nf * SF + sf]);
      if (!lsb) {
        const ap_int<ACC_W> m = ((sf == 0) ? ap_int<ACC_W>(0) : acc[pe]) + d;
        const bool g = m >= gates[pe][nf];
        if (last) gate[pe] = g;
        any = any || g;
        acc[pe] = m;
      } else {
        const ap_int<ACC_W> base = (sf == 0) ? ap_int<ACC_W>(acc[pe] + acc[pe]) : acc[pe];
        acc[pe] = base + (gate[pe] ? d : typename Dot::term_t(0));
      }
    }
    if (!last) {
      sf++;
    } else if (!lsb && any) {
      sf = 0;
      lsb = true;
    } else {
      ap_uint<PE * Act::OB> y = 0;
      for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
        const ap_int<ACC_W> v = lsb ? acc[pe] : ap_int<ACC_W>(acc[pe] + acc[pe]);
        y((pe + 1) * Act::OB - 1, pe * Act::OB) = act.activate(nf, pe, v);
      }
      out.write(y);
      sf = 0;
      lsb = false;
      nf = (nf == NF - 1) ? 0u : nf + 1;
      done++;
    }
  }
}

#endif
