// bnn2fpga HLS library: stream data-width converter (the plan's one "dwc" unit, as the
// RTL's bnn_dwc dispatcher picks one of three structures).
//
//   in  : NUM_IN beats of IN_W bits;  out : NUM_IN*IN_W/OUT_W beats of OUT_W bits, per frame;
//   numReps frames per call (a runtime count), one loop over all of them.
//   A sequence of elements keeps its order: the lowest bits of a wide beat come first.
//   Up   (OUT_W = R*IN_W): a shift register, one write per R reads.
//   Down (IN_W = R*OUT_W): one read per R writes of the word's low slice.
//   Shift (neither divides): a buffer of IN_W + OUT_W bits; an iteration writes a beat when
//        it holds OUT_W bits and reads one when the rest would not make the next beat.
//   Each is one flushable II=1 loop (LOOP_TRIPCOUNT: one frame); a frame ends with no bits
//   held, so the frames of a call need no reset in between.  Only the structure that fits the widths is instantiated
//   (a class specialisation, not an if on constants), so the others' part-selects, which
//   would be invalid for these widths, never exist.
#ifndef BNN_DWC_H
#define BNN_DWC_H

#include "bnn_common.h"

enum DwcKind { DWC_UP, DWC_DOWN, DWC_SHIFT };

template <unsigned IN_W, unsigned OUT_W>
struct DwcKindOf {
  static const DwcKind value = (OUT_W % IN_W == 0) ? DWC_UP
                               : (IN_W % OUT_W == 0) ? DWC_DOWN : DWC_SHIFT;
};

template <unsigned IN_W, unsigned OUT_W, unsigned NUM_IN, DwcKind KIND>
struct Dwc;

template <unsigned IN_W, unsigned OUT_W, unsigned NUM_IN>
struct Dwc<IN_W, OUT_W, NUM_IN, DWC_UP> {
  static void run(hls::stream<ap_uint<IN_W> > &in, hls::stream<ap_uint<OUT_W> > &out,
                  unsigned numReps) {
    const unsigned RATIO = OUT_W / IN_W;
    ap_uint<OUT_W> word = 0;
    unsigned o = 0;
    for (unsigned i = 0; i < numReps * NUM_IN; i++) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=NUM_IN max=NUM_IN
      word = word >> IN_W;
      word(OUT_W - 1, OUT_W - IN_W) = in.read();
      if (o == RATIO - 1) out.write(word);
      o = (o == RATIO - 1) ? 0u : o + 1;
    }
  }
};

template <unsigned IN_W, unsigned OUT_W, unsigned NUM_IN>
struct Dwc<IN_W, OUT_W, NUM_IN, DWC_DOWN> {
  static void run(hls::stream<ap_uint<IN_W> > &in, hls::stream<ap_uint<OUT_W> > &out,
                  unsigned numReps) {
    const unsigned RATIO = IN_W / OUT_W;
    const unsigned ITER = NUM_IN * RATIO;
    ap_uint<IN_W> word = 0;
    unsigned o = 0;
    for (unsigned i = 0; i < numReps * ITER; i++) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=ITER max=ITER
      if (o == 0) word = in.read();
      out.write(ap_uint<OUT_W>(word(OUT_W - 1, 0)));
      word = word >> OUT_W;
      o = (o == RATIO - 1) ? 0u : o + 1;
    }
  }
};

template <unsigned IN_W, unsigned OUT_W, unsigned NUM_IN>
struct Dwc<IN_W, OUT_W, NUM_IN, DWC_SHIFT> {
  // An iteration writes when it holds a whole output beat, and reads (in the same
  // iteration) when what is left would not make the next one: the faster side moves a beat
  // every cycle, as bnn_dwc_shift does, and a read is never issued before it is needed.
  static void run(hls::stream<ap_uint<IN_W> > &in, hls::stream<ap_uint<OUT_W> > &out,
                  unsigned numReps) {
    const unsigned BUF = IN_W + OUT_W;  // < OUT_W bits are left when a beat enters
    const unsigned NUM_OUT = NUM_IN * IN_W / OUT_W;
    const unsigned MIN_ITER = NUM_IN > NUM_OUT ? NUM_IN : NUM_OUT;
    const unsigned MAX_ITER = NUM_IN + NUM_OUT;  // trip counts for the reports
    static_assert(MIN_ITER <= MAX_ITER, "trip count bounds");
    ap_uint<BUF> buf = 0;
    unsigned held = 0;  // valid bits at the bottom of buf
    unsigned reads_left = numReps * NUM_IN, writes_left = numReps * NUM_OUT;
    while (writes_left > 0) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=MIN_ITER max=MAX_ITER
      const bool wr = held >= OUT_W;
      unsigned left = held;
      ap_uint<BUF> kept = buf;
      if (wr) {
        out.write(ap_uint<OUT_W>(buf(OUT_W - 1, 0)));
        kept = buf >> OUT_W;
        left = held - OUT_W;
        writes_left--;
      }
      if (reads_left > 0 && left < OUT_W) {
        const ap_uint<BUF> x = in.read();
        kept |= x << left;
        left += IN_W;
        reads_left--;
      }
      buf = kept;
      held = left;
    }
  }
};

template <unsigned IN_W, unsigned OUT_W, unsigned NUM_IN>
void StreamingDataWidthConverter(hls::stream<ap_uint<IN_W> > &in,
                                 hls::stream<ap_uint<OUT_W> > &out, unsigned numReps) {
  static_assert((NUM_IN * IN_W) % OUT_W == 0, "the frame must fill whole output beats");
  Dwc<IN_W, OUT_W, NUM_IN, DwcKindOf<IN_W, OUT_W>::value>::run(in, out, numReps);
}

#endif
