// bnn_mvtu: matrix-vector-threshold unit (FINN MVAU style), PE output lanes x SIMD input
// lanes, one (neuron fold, synapse fold) step per cycle.
//
// Parameters (the folding)
//   PE, SIMD     output lanes, input lanes per beat
//   NF, SF       neuron folds = out_channels/PE, synapse folds = fan_in/SIMD
//   IN_BITS      bits per input element
//   IN_UINT      0: bipolar input, XNOR-popcount (bnn_xnor_popcount)
//                1: unsigned codes (uint, or unipolar with IN_BITS = 1) x binary weights
//                   (bnn_uint_dot: the first-layer fixed-point unit)
//   USE_TAP_VALID  1: a beat with s_tuser = 0 (padded tap) adds exactly 0
//   WB, IN_SIGNED  WB > 1: integer weights of WB bits, an integer multiply-accumulate
//                (bnn_int_dot: the multi-bit MVTU of float first and last layers) over
//                signed (IN_SIGNED = 1), unsigned or bipolar codes; WB = 1: binary weights
//   ACC_W        accumulator bits (signed), from the worst-case fan-in (never overflows)
//   NT, TW       thresholds per output channel and their bits (signed); NT = 0 outputs
//                the accumulator itself (OUT_W = ACC_W)
//   OUT_W        bits per output element: clog2(NT+1) (count of thresholds crossed)
//   WEIGHT_FILE  init-file prefix: PE p reads WEIGHT_FILE_pe<ppp>.mem, NF*SF words of
//                SIMD*WB bits at address nf*SF + sf (bnn2fpga.packing.weight_memory;
//                integer weights: int_weight_memory, lane i at [i*WB +: WB])
//   THRESH_FILE  prefix of THRESH_FILE_pe<ppp>.mem: NF words of NT*TW bits, threshold j at
//                bits [j*TW +: TW] (bnn2fpga.packing.threshold_memory)
// Streams
//   s: SIMD elements of one input vector per beat (+ s_tuser: tap valid), SF beats/vector
//   m: PE output channels per beat, NF beats per vector (channel nf*PE + p in lane p)
//
// Pipeline: fetch (input or input-buffer replay + weight/threshold read) -> dot + accumulate
// -> threshold compare into the output register.  One enable (output register free or
// consumed) advances every stage, so backpressure stalls the whole unit without a skid
// buffer; the sync-read memories hold their output while stalled.  The input vector is
// taken from the stream while nf = 0 and replayed from ibuf for the other neuron folds.
module bnn_mvtu #(
    parameter int PE = 1,
    parameter int SIMD = 1,
    parameter int NF = 1,
    parameter int SF = 1,
    parameter int IN_BITS = 1,
    parameter int IN_UINT = 0,
    parameter int USE_TAP_VALID = 0,
    parameter int WB = 1,
    parameter int IN_SIGNED = 0,
    parameter int ACC_W = 8,
    parameter int NT = 1,
    parameter int TW = 8,
    parameter int OUT_W = 1,
    parameter WEIGHT_FILE = "weights",
    parameter THRESH_FILE = "thresholds"
) (
    input  logic                  clk,
    input  logic                  rst_n,
    input  logic [SIMD*IN_BITS-1:0] s_tdata,
    input  logic                  s_tuser,
    input  logic                  s_tvalid,
    output logic                  s_tready,
    output logic [PE*OUT_W-1:0]   m_tdata,
    output logic                  m_tvalid,
    input  logic                  m_tready
);
  localparam int XW = SIMD * IN_BITS;
  localparam int WD = NF * SF;
  localparam int WAW = WD > 1 ? $clog2(WD) : 1;
  localparam int NFW = NF > 1 ? $clog2(NF) : 1;
  localparam int SFW = SF > 1 ? $clog2(SF) : 1;

  // ---- stage 0: fold counters and input selection ---------------------------------------
  logic en;
  assign en = !m_tvalid || m_tready;

  logic [NFW-1:0] nf;
  logic [SFW-1:0] sf;
  logic [WAW-1:0] waddr;
  wire first_fold = nf == '0;
  wire go = !first_fold || s_tvalid;
  wire step = en && go;
  assign s_tready = en && first_fold;

  logic [XW-1:0] x0;
  logic tap0;
  if (NF > 1) begin : g_ibuf
    // the input vector, kept for the neuron folds nf > 0
    logic [XW-1:0] ibuf[SF];
    logic ivalid[SF];
    always_ff @(posedge clk) begin
      if (step && first_fold) begin
        ibuf[sf] <= s_tdata;
        ivalid[sf] <= s_tuser;
      end
    end
    assign x0 = first_fold ? s_tdata : ibuf[sf];
    assign tap0 = first_fold ? s_tuser : ivalid[sf];
  end else begin : g_direct
    assign x0 = s_tdata;
    assign tap0 = s_tuser;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      nf <= '0;
      sf <= '0;
      waddr <= '0;
    end else if (step) begin
      waddr <= (waddr == WAW'(WD - 1)) ? '0 : waddr + 1'b1;
      if (sf == SFW'(SF - 1)) begin
        sf <= '0;
        nf <= (nf == NFW'(NF - 1)) ? '0 : nf + 1'b1;
      end else begin
        sf <= sf + 1'b1;
      end
    end
  end

  // ---- stage 1: operands registered, memories read --------------------------------------
  logic v1, first1, last1, tap1;
  logic [XW-1:0] x1;
  always_ff @(posedge clk) begin
    if (!rst_n) v1 <= 1'b0;
    else if (en) v1 <= go;
  end
  always_ff @(posedge clk) begin
    if (step) begin
      x1 <= x0;
      tap1 <= USE_TAP_VALID != 0 ? tap0 : 1'b1;
      first1 <= sf == '0;
      last1 <= sf == SFW'(SF - 1);
    end
  end

  // ---- per PE: weight memory, dot product, accumulator, thresholds -----------------------
  logic done2;
  always_ff @(posedge clk) begin
    if (!rst_n) done2 <= 1'b0;
    else if (en) done2 <= v1 && last1;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) m_tvalid <= 1'b0;
    else if (en) m_tvalid <= done2;
  end

  for (genvar p = 0; p < PE; p++) begin : g_pe
    localparam logic [23:0] IDX = {8'(48 + p / 100 % 10), 8'(48 + p / 10 % 10), 8'(48 + p % 10)};

    logic [SIMD*WB-1:0] wmem[WD];
    initial $readmemh({WEIGHT_FILE, "_pe", IDX, ".mem"}, wmem);

    logic [SIMD*WB-1:0] w1;
    always_ff @(posedge clk) begin
      if (step) w1 <= wmem[waddr];
    end

    logic signed [ACC_W-1:0] dot;
    if (WB > 1) begin : g_int
      bnn_int_dot #(.SIMD(SIMD), .B(IN_BITS), .WB(WB), .IN_SIGNED(IN_SIGNED),
                    .IN_UINT(IN_UINT), .OW(ACC_W)) u_dot (
          .valid(tap1), .x(x1), .w(w1), .dot(dot));
    end else if (IN_UINT != 0) begin : g_uint
      bnn_uint_dot #(.SIMD(SIMD), .B(IN_BITS), .OW(ACC_W)) u_dot (
          .valid(tap1), .x(x1), .w(w1), .dot(dot));
    end else begin : g_xnor
      bnn_xnor_popcount #(.SIMD(SIMD), .OW(ACC_W)) u_dot (
          .valid(tap1), .a(x1), .w(w1), .dot(dot));
    end

    logic signed [ACC_W-1:0] acc;
    always_ff @(posedge clk) begin
      if (en && v1) acc <= (first1 ? '0 : acc) + dot;
    end

    if (NT > 0) begin : g_thresh
      logic [NT*TW-1:0] tmem[NF];
      initial $readmemh({THRESH_FILE, "_pe", IDX, ".mem"}, tmem);

      logic [NT*TW-1:0] t1, t2;
      always_ff @(posedge clk) begin
        if (step) t1 <= tmem[nf];
        if (en && v1) t2 <= t1;
      end

      // output code = number of thresholds crossed (acc >= T_j)
      logic [OUT_W-1:0] code;
      always_comb begin
        code = '0;
        for (int j = 0; j < NT; j++) begin
          code = code + OUT_W'(acc >= $signed(t2[j*TW+:TW]));
        end
      end
      always_ff @(posedge clk) begin
        if (en && done2) m_tdata[p*OUT_W+:OUT_W] <= code;
      end
    end else begin : g_acc
      always_ff @(posedge clk) begin
        if (en && done2) m_tdata[p*OUT_W+:OUT_W] <= OUT_W'(acc);
      end
    end
  end
endmodule
