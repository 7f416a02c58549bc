// bnn2fpga HLS library: FracBNN's thermometer input on chip (ir.ThermometerEncode).
//
//   in  : numReps * PIXELS beats of C 8-bit pixel codes (code c at bits [8c, 8c+8)): the
//         host streams raw pixels, C bytes each.
//   out : one beat of C*L bits per pixel: bit c*L + k = [p_c >= thr[k]] (1 = +1), L
//         comparators per colour channel; thr holds L ascending values in 0..256 (256 never
//         fires).
// One flushable II=1 loop over numReps * PIXELS iterations (LOOP_TRIPCOUNT: one frame).
#ifndef BNN_THERMOMETER_H
#define BNN_THERMOMETER_H

#include "bnn_common.h"

template <unsigned C, unsigned L, unsigned PIXELS>
void Thermometer(hls::stream<ap_uint<C * 8> > &in, hls::stream<ap_uint<C * L> > &out,
                 const ap_uint<9> thr[L], unsigned numReps) {
  for (unsigned i = 0; i < numReps * PIXELS; i++) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=PIXELS max=PIXELS
    const ap_uint<C * 8> x = in.read();
    ap_uint<C * L> y = 0;
    for (unsigned c = 0; c < C; c++) {
#pragma HLS UNROLL
      const ap_uint<9> p = ap_uint<8>(x(c * 8 + 7, c * 8));
      for (unsigned k = 0; k < L; k++) {
#pragma HLS UNROLL
        y[c * L + k] = p >= thr[k] ? 1 : 0;
      }
    }
    out.write(y);
  }
}

#endif
