// bnn2fpga HLS library: matrix-vector-threshold unit (MVTU), FINN-style folding.
//
//   MW = fan-in, MH = output channels; PE output lanes, SIMD input lanes;
//   NF = MH/PE neuron folds, SF = MW/SIMD synapse folds, one flat II=1 loop of
//   numReps * PIXELS * NF * SF iterations (PIXELS = output pixels of a conv, 1 for a dense
//   layer; numReps = frames per call, a runtime count as FINN's): the frames of a call run
//   back to back without draining the pipeline (a flushable one: enable_flush).
//
//   in  : PIXELS * SF beats of Dot::IN_W bits: SIMD lanes of one input vector, lane i at
//         bits [i*IB, (i+1)*IB); for a zero-padded bipolar conv, bit SIMD is the sliding
//         window's valid flag (0 = padded tap: the beat adds exactly 0).  The vector is read
//         while nf == 0 and replayed from inputBuf[SF] for the other neuron folds; IBUF
//         (BnnStorage) says where inputBuf lives (the plan's estimate decides it).
//   out : PIXELS * NF beats of PE*OB bits: lane p = output channel nf*PE + p, at bits
//         [p*OB, (p+1)*OB).  Thresholded: the code #{t : acc >= T[c][t]}; accumulator: acc
//         as an OB-bit two's-complement value.
//   weights[PE][NF*SF]: Dot::W_W-bit words: SIMD bits (bit i = +1 weight on lane i), or for
//         IntDot SIMD signed WB-bit weights (lane i at bits [i*WB, (i+1)*WB)).  Row r of the weight
//         matrix sits in PE r % PE at neuron fold r / PE; word nf*SF + sf holds fan-in
//         [sf*SIMD, (sf+1)*SIMD) (packing.weight_memory).  The caller partitions dim 1.
//   acc : ap_int<ACC_W> per PE, ACC_W = IR Dense.acc_bits (holds +-bound and the thresholds;
//         no partial sum can overflow since |partial| <= bound).
//
// Policies (template parameters):
//   Dot  XnorDot<SIMD, MASKED>  bipolar input: 2*popcount(XNOR(a, w)) - SIMD per beat
//        UintDot<SIMD, IB>      IB-bit unsigned codes (first layer, unipolar): sum +-x_i
//        IntDot<SIMD, IB, WB, IN_SIGNED, IN_UINT>  integer weights: sum x_i * w_i
//   Act  ThresholdActivation<PE, NF, NT, TW, OB>  thresholds folded in (hidden layers)
//        AccumulatorOutput<OB>                      raw accumulator (last layer)
#ifndef BNN_MVTU_H
#define BNN_MVTU_H

#include "adder_tree.h"

// Bipolar activations x bipolar weights.  MASKED: bit SIMD of the beat is the valid flag.
template <unsigned SIMD_, bool MASKED>
struct XnorDot {
  static const unsigned SIMD = SIMD_;
  static const unsigned IN_W = SIMD_ + (MASKED ? 1u : 0u);
  static const unsigned W_W = SIMD_;
  typedef ap_int<bnn_ubits(SIMD_) + 2> term_t;  // holds [-SIMD, SIMD]

  static term_t dot(const ap_uint<IN_W> &x, const ap_uint<SIMD_> &w) {
#pragma HLS INLINE
    const ap_uint<SIMD_> a = x(SIMD_ - 1, 0);
    const ap_uint<SIMD_> same = ~(a ^ w);
    const term_t pc = Popcount<SIMD_>(same);
    const term_t d = 2 * pc - term_t(SIMD_);
    return (MASKED && x[IN_W - 1] == 0) ? term_t(0) : d;
  }
};

// Unsigned IB-bit codes x bipolar weights: a weight only picks the sign, so the dot product is
// an adder tree over +-x_i (no multipliers).
template <unsigned SIMD_, unsigned IB>
struct UintDot {
  static const unsigned SIMD = SIMD_;
  static const unsigned IN_W = SIMD_ * IB;
  static const unsigned W_W = SIMD_;
  typedef ap_int<IB + bnn_clog2(SIMD_) + 1> term_t;  // |sum| <= SIMD * (2^IB - 1)

  static term_t dot(const ap_uint<IN_W> &x, const ap_uint<SIMD_> &w) {
#pragma HLS INLINE
    term_t v[SIMD_];
#pragma HLS ARRAY_PARTITION variable=v complete dim=1
    for (unsigned i = 0; i < SIMD_; i++) {
#pragma HLS UNROLL
      const term_t c = ap_uint<IB>(x(i * IB + IB - 1, i * IB));
      v[i] = w[i] ? term_t(c) : term_t(-c);
    }
    return AdderTree<SIMD_>(v);
  }
};

// IB-bit codes (signed for IN_SIGNED, else unsigned for IN_UINT, else bipolar bits) x signed
// WB-bit integer weights: SIMD multipliers of (IB+1) x WB bits and their sum (a DSP each
// where the product pays, units/mvtu.py).  MASKED: bit IN_W - 1 is a padded tap's flag.
template <unsigned SIMD_, unsigned IB, unsigned WB, bool IN_SIGNED, bool IN_UINT, bool MASKED>
struct IntDot {
  static const unsigned SIMD = SIMD_;
  static const unsigned IN_W = SIMD_ * IB + (MASKED ? 1u : 0u);
  static const unsigned W_W = SIMD_ * WB;
  typedef ap_int<IB + WB + 1 + bnn_clog2(SIMD_)> term_t;  // |sum| <= SIMD * 2^IB * 2^(WB-1)

  static term_t dot(const ap_uint<IN_W> &x, const ap_uint<W_W> &w) {
#pragma HLS INLINE
    term_t sum = 0;
    for (unsigned i = 0; i < SIMD_; i++) {
#pragma HLS UNROLL
      const ap_uint<IB> c = x(i * IB + IB - 1, i * IB);
      ap_int<IB + 1> xv;
      if (IN_SIGNED) xv = ap_int<IB>(c);
      else if (IN_UINT) xv = c;
      else xv = c[0] ? 1 : -1;
      const ap_int<WB> wv = w(i * WB + WB - 1, i * WB);
      const ap_int<IB + 1 + WB> prod = xv * wv;
      sum += prod;
    }
    return (MASKED && x[IN_W - 1] == 0) ? term_t(0) : sum;
  }
};

// Output code = number of thresholds crossed: #{t : acc >= m[pe][nf][t]} (ascending rows).
// Channel c = nf*PE + pe.  m is the "thresholds folded in": no separate unit, no extra FIFO.
template <unsigned PE, unsigned NF, unsigned NT, unsigned TW, unsigned OB_>
struct ThresholdActivation {
  static const unsigned OB = OB_;
  ap_int<TW> m[PE][NF][NT];

  template <int W>
  ap_uint<OB_> activate(unsigned nf, unsigned pe, const ap_int<W> &acc) const {
#pragma HLS INLINE
    ap_uint<OB_> code = 0;
    for (unsigned t = 0; t < NT; t++) {
#pragma HLS UNROLL
      if (acc >= m[pe][nf][t]) code++;
    }
    return code;
  }
};

// The accumulator itself, as OB-bit two's complement (the network's last layer).
template <unsigned OB_>
struct AccumulatorOutput {
  static const unsigned OB = OB_;

  template <int W>
  ap_uint<OB_> activate(unsigned, unsigned, const ap_int<W> &acc) const {
#pragma HLS INLINE
    const ap_int<OB_> v = acc;
    return ap_uint<OB_>(v);
  }
};

// The MVTU loop over the caller's input buffer inputBuf[SF] (declared, and bound, by one
// of the MvtuBuffer specialisations below; inlined into it, so that the binding holds).
template <unsigned MW, unsigned MH, unsigned SIMD, unsigned PE, unsigned PIXELS,
          unsigned ACC_W, class Dot, class Act>
void MvtuLoop(hls::stream<ap_uint<Dot::IN_W> > &in, hls::stream<ap_uint<PE * Act::OB> > &out,
              const ap_uint<Dot::W_W> weights[PE][(MH / PE) * (MW / SIMD)], const Act &act,
              ap_uint<Dot::IN_W> inputBuf[MW / SIMD], unsigned numReps) {
#pragma HLS INLINE
  const unsigned NF = MH / PE;
  const unsigned SF = MW / SIMD;
  const unsigned ITER = PIXELS * NF * SF;  // iterations per frame
  ap_int<ACC_W> acc[PE];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=1

  unsigned nf = 0, sf = 0, tile = 0;  // tile = nf * SF + sf: the weight word of each PE
  for (unsigned i = 0; i < numReps * ITER; i++) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=ITER max=ITER
    ap_uint<Dot::IN_W> x;
    if (nf == 0) {
      x = in.read();
      inputBuf[sf] = x;
    } else {
      x = inputBuf[sf];
    }
    ap_uint<PE * Act::OB> y = 0;
    for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
      const ap_int<ACC_W> prev = (sf == 0) ? ap_int<ACC_W>(0) : acc[pe];
      const ap_int<ACC_W> a = prev + Dot::dot(x, weights[pe][tile]);
      acc[pe] = a;
      y((pe + 1) * Act::OB - 1, pe * Act::OB) = act.activate(nf, pe, a);
    }
    if (sf == SF - 1) out.write(y);

    tile = (tile == NF * SF - 1) ? 0u : tile + 1;
    if (++sf == SF) {
      sf = 0;
      if (++nf == NF) nf = 0;
    }
  }
}

// The input buffer in the storage the plan's estimate chose (read and written at one
// address per cycle: a single-port RAM), one specialisation per BnnStorage.
template <BnnStorage S>
struct MvtuBuffer;

#define BNN_MVTU_RUN_SIGNATURE                                                              \
  template <unsigned MW, unsigned MH, unsigned SIMD, unsigned PE, unsigned PIXELS,           \
            unsigned ACC_W, class Dot, class Act>                                            \
  static void run(hls::stream<ap_uint<Dot::IN_W> > &in,                                      \
                  hls::stream<ap_uint<PE * Act::OB> > &out,                                  \
                  const ap_uint<Dot::W_W> weights[PE][(MH / PE) * (MW / SIMD)], const Act &act, \
                  unsigned numReps)
#define BNN_MVTU_RUN_LOOP \
  MvtuLoop<MW, MH, SIMD, PE, PIXELS, ACC_W, Dot, Act>(in, out, weights, act, inputBuf, numReps)

template <>
struct MvtuBuffer<BNN_STORAGE_AUTO> {
  BNN_MVTU_RUN_SIGNATURE {
#pragma HLS INLINE
    ap_uint<Dot::IN_W> inputBuf[MW / SIMD];
    BNN_MVTU_RUN_LOOP;
  }
};

template <>
struct MvtuBuffer<BNN_STORAGE_REGISTER> {
  BNN_MVTU_RUN_SIGNATURE {
#pragma HLS INLINE
    ap_uint<Dot::IN_W> inputBuf[MW / SIMD];
#pragma HLS ARRAY_PARTITION variable=inputBuf complete dim=1
    BNN_MVTU_RUN_LOOP;
  }
};

template <>
struct MvtuBuffer<BNN_STORAGE_LUTRAM> {
  BNN_MVTU_RUN_SIGNATURE {
#pragma HLS INLINE
    ap_uint<Dot::IN_W> inputBuf[MW / SIMD];
#ifdef __VITIS_HLS__
#pragma HLS BIND_STORAGE variable=inputBuf type=ram_1p impl=lutram
#else
#pragma HLS RESOURCE variable=inputBuf core=RAM_1P_LUTRAM
#endif
    BNN_MVTU_RUN_LOOP;
  }
};

template <>
struct MvtuBuffer<BNN_STORAGE_BRAM> {
  BNN_MVTU_RUN_SIGNATURE {
#pragma HLS INLINE
    ap_uint<Dot::IN_W> inputBuf[MW / SIMD];
#ifdef __VITIS_HLS__
#pragma HLS BIND_STORAGE variable=inputBuf type=ram_1p impl=bram
#else
#pragma HLS RESOURCE variable=inputBuf core=RAM_1P_BRAM
#endif
    BNN_MVTU_RUN_LOOP;
  }
};

template <>
struct MvtuBuffer<BNN_STORAGE_URAM> {
  BNN_MVTU_RUN_SIGNATURE {
#pragma HLS INLINE
    ap_uint<Dot::IN_W> inputBuf[MW / SIMD];
#ifdef __VITIS_HLS__
#pragma HLS BIND_STORAGE variable=inputBuf type=ram_1p impl=uram
#else
#pragma HLS RESOURCE variable=inputBuf core=RAM_1P_URAM
#endif
    BNN_MVTU_RUN_LOOP;
  }
};

#undef BNN_MVTU_RUN_SIGNATURE
#undef BNN_MVTU_RUN_LOOP

template <unsigned MW, unsigned MH, unsigned SIMD, unsigned PE, unsigned PIXELS,
          unsigned ACC_W, class Dot, class Act, BnnStorage IBUF = BNN_STORAGE_AUTO>
void MatrixVectorActivate(hls::stream<ap_uint<Dot::IN_W> > &in,
                          hls::stream<ap_uint<PE * Act::OB> > &out,
                          const ap_uint<Dot::W_W> weights[PE][(MH / PE) * (MW / SIMD)],
                          const Act &act, unsigned numReps) {
  static_assert(MW % SIMD == 0, "SIMD must divide the fan-in (MW)");
  static_assert(MH % PE == 0, "PE must divide the output channels (MH)");
  static_assert(Dot::SIMD == SIMD, "the Dot policy must have the unit's SIMD");
  MvtuBuffer<IBUF>::template run<MW, MH, SIMD, PE, PIXELS, ACC_W, Dot, Act>(in, out, weights,
                                                                             act, numReps);
}

#endif
