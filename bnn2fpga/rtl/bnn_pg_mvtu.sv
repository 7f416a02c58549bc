// bnn_pg_mvtu: FracBNN's two-pass precision-gated convolution unit (ir.PGConv2D), PE output
// lanes x SIMD input lanes of 2-bit codes q (MSB plane m = q[1], LSB plane l = q[0]).
//
// For each output pixel and neuron fold (a group: the PE lanes of fold nf):
//   MSB pass  SF cycles: M = XNOR-popcount of the MSB bits with the weights (a padded tap,
//             s_tuser = 0, adds 0); on its last beat the gate g_p = [M_p >= G[c]] of every
//             lane is known (combinationally, from the accumulator and the last beat's dot);
//   LSB pass  SF more cycles over the LSB bits, replayed from the input buffer, ONLY if any
//             gate of the group is on: acc_p = 2M_p + g_p * L_p; a group with every gate off
//             issues the next group's MSB pass in the very next cycle (acc_p = 2M_p).
// So a frame takes PIXELS*NF*SF + (LSB passes)*SF cycles: the skipping is real.  The output
// is the count of thresholds crossed by acc (NT > 0) or acc itself (NT = 0), as bnn_mvtu's.
//
// Parameters
//   PE, SIMD, NF, SF  folding (NF = out_channels/PE, SF = fan_in/SIMD)
//   USE_TAP_VALID     1: a beat with s_tuser = 0 (padded tap) adds exactly 0 to M and L
//   ACC_W             accumulator bits (signed), holds +-3*fan_in and the thresholds
//   NT, TW, OUT_W     thresholds per channel, their bits, output bits (NT = 0: OUT_W = ACC_W)
//   LSB_PASSES        expected LSB passes per frame (the estimator's; no logic uses it)
//   WEIGHT_FILE       WEIGHT_FILE_pe<ppp>.mem: NF*SF words of SIMD bits (packing.weight_memory)
//   THRESH_FILE       THRESH_FILE_pe<ppp>.mem: NF words of NT*TW bits
//   GATE_FILE         GATE_FILE_pe<ppp>.mem: NF words of ACC_W bits, the gate thresholds
// Streams
//   s: SIMD 2-bit codes of one tap per beat (code i at s_tdata[2i +: 2]), SF beats/pixel
//   m: PE output channels per beat, NF beats per pixel (channel nf*PE + p in lane p)
//
// Pipeline (as bnn_mvtu's): issue (input or buffer replay, plane select, memory addresses)
// -> dot + accumulate (+ gate decision) -> threshold compare into the output register.  One
// enable advances every stage.  The input is read from the stream only in the MSB pass of
// fold 0, and kept in ibuf for the LSB pass and the folds nf > 0.  The gate decision of a
// group's last MSB beat selects the next issue in the same cycle (no bubble); when the next
// issue waits for input, the decision is kept in any_q.
module bnn_pg_mvtu #(
    parameter int PE = 1,
    parameter int SIMD = 1,
    parameter int NF = 1,
    parameter int SF = 1,
    parameter int USE_TAP_VALID = 0,
    parameter int ACC_W = 8,
    parameter int NT = 1,
    parameter int TW = 8,
    parameter int OUT_W = 1,
    /* verilator lint_off UNUSEDPARAM */
    parameter int LSB_PASSES = 0,       // the estimator's expected figure; no logic uses it
    /* verilator lint_on UNUSEDPARAM */
    parameter WEIGHT_FILE = "weights",
    parameter THRESH_FILE = "thresholds",
    parameter GATE_FILE = "gates"
) (
    input  logic                  clk,
    input  logic                  rst_n,
    input  logic [SIMD*2-1:0]     s_tdata,
    input  logic                  s_tuser,
    input  logic                  s_tvalid,
    output logic                  s_tready,
    output logic [PE*OUT_W-1:0]   m_tdata,
    output logic                  m_tvalid,
    input  logic                  m_tready
);
  localparam int XW = SIMD * 2;
  localparam int WD = NF * SF;
  localparam int WAW = WD > 1 ? $clog2(WD) : 1;
  localparam int NFW = NF > 1 ? $clog2(NF) : 1;
  localparam int SFW = SF > 1 ? $clog2(SF) : 1;

  logic en;
  assign en = !m_tvalid || m_tready;

  // ---- stage 0: which beat to issue -----------------------------------------------------
  logic [NFW-1:0] nf;
  logic [SFW-1:0] sf;
  logic lsb;          // in the LSB pass of fold nf
  logic pend;         // the MSB pass of fold nf was issued; its gate decides what follows
  logic any_q;        // that decision, once its beat left stage 1
  logic any_now;      // the decision while its last beat is in stage 1
  logic v1, lsb1, last1, first1, tap1;

  wire msb_last1 = v1 && !lsb1 && last1;
  wire any_dec = msb_last1 ? any_now : any_q;
  wire [NFW-1:0] nf_next = (nf == NFW'(NF - 1)) ? '0 : nf + 1'b1;
  wire cur_lsb = pend ? any_dec : lsb;
  wire [NFW-1:0] cur_nf = (pend && !any_dec) ? nf_next : nf;
  wire [SFW-1:0] cur_sf = pend ? '0 : sf;
  wire cur_last = cur_sf == SFW'(SF - 1);
  wire reads = !cur_lsb && cur_nf == '0;
  wire go = !reads || s_tvalid;
  wire step = en && go;
  assign s_tready = en && reads;

  logic [XW-1:0] ibuf[SF];
  logic ivalid[SF];
  always_ff @(posedge clk) begin
    if (step && reads) begin
      ibuf[cur_sf] <= s_tdata;
      ivalid[cur_sf] <= s_tuser;
    end
  end
  wire [XW-1:0] x0 = reads ? s_tdata : ibuf[cur_sf];
  wire tap0 = reads ? s_tuser : ivalid[cur_sf];
  logic [SIMD-1:0] plane0;
  always_comb begin
    for (int i = 0; i < SIMD; i++) plane0[i] = cur_lsb ? x0[2*i] : x0[2*i+1];
  end
  wire [WAW-1:0] waddr = WAW'(cur_nf) * WAW'(SF) + WAW'(cur_sf);

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      nf <= '0;
      sf <= '0;
      lsb <= 1'b0;
      pend <= 1'b0;
    end else if (step) begin
      if (!cur_last) begin
        sf <= cur_sf + 1'b1;
        nf <= cur_nf;
        lsb <= cur_lsb;
        pend <= 1'b0;
      end else if (!cur_lsb) begin      // the MSB pass ends: its gate decides the next beat
        sf <= '0;
        nf <= cur_nf;
        lsb <= 1'b0;
        pend <= 1'b1;
      end else begin                    // the LSB pass ends: next group
        sf <= '0;
        nf <= (cur_nf == NFW'(NF - 1)) ? '0 : cur_nf + 1'b1;
        lsb <= 1'b0;
        pend <= 1'b0;
      end
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) any_q <= 1'b0;
    else if (en && msb_last1) any_q <= any_now;
  end

  // ---- stage 1: operands registered, memories read --------------------------------------
  logic [SIMD-1:0] x1;
  always_ff @(posedge clk) begin
    if (!rst_n) v1 <= 1'b0;
    else if (en) v1 <= go;
  end
  always_ff @(posedge clk) begin
    if (step) begin
      x1 <= plane0;
      tap1 <= USE_TAP_VALID != 0 ? tap0 : 1'b1;
      first1 <= cur_sf == '0;
      last1 <= cur_last;
      lsb1 <= cur_lsb;
    end
  end

  logic done2;
  always_ff @(posedge clk) begin
    if (!rst_n) done2 <= 1'b0;
    else if (en) done2 <= v1 && last1 && (lsb1 || !any_now);
  end
  always_ff @(posedge clk) begin
    if (!rst_n) m_tvalid <= 1'b0;
    else if (en) m_tvalid <= done2;
  end

  logic [PE-1:0] gate_now;
  assign any_now = |gate_now;

  for (genvar p = 0; p < PE; p++) begin : g_pe
    localparam logic [23:0] IDX = {8'(48 + p / 100 % 10), 8'(48 + p / 10 % 10), 8'(48 + p % 10)};

    logic [SIMD-1:0] wmem[WD];
    initial $readmemh({WEIGHT_FILE, "_pe", IDX, ".mem"}, wmem);
    logic [ACC_W-1:0] gmem[NF];
    initial $readmemh({GATE_FILE, "_pe", IDX, ".mem"}, gmem);

    logic [SIMD-1:0] w1;
    logic signed [ACC_W-1:0] gt1;
    always_ff @(posedge clk) begin
      if (step) begin
        w1 <= wmem[waddr];
        gt1 <= $signed(gmem[cur_nf]);
      end
    end

    logic signed [ACC_W-1:0] dot;
    bnn_xnor_popcount #(.SIMD(SIMD), .OW(ACC_W)) u_dot (
        .valid(tap1), .a(x1), .w(w1), .dot(dot));

    logic signed [ACC_W-1:0] acc;
    logic g;                                  // this lane's gate, for its LSB pass
    wire signed [ACC_W-1:0] m_sum = (first1 ? '0 : acc) + dot;
    assign gate_now[p] = m_sum >= gt1;
    always_ff @(posedge clk) begin
      if (en && v1) begin
        if (!lsb1) begin
          acc <= (last1 && !any_now) ? m_sum <<< 1 : m_sum;
          if (last1) g <= gate_now[p];
        end else begin
          acc <= (first1 ? acc <<< 1 : acc) + (g ? dot : '0);
        end
      end
    end

    if (NT > 0) begin : g_thresh
      logic [NT*TW-1:0] tmem[NF];
      initial $readmemh({THRESH_FILE, "_pe", IDX, ".mem"}, tmem);

      logic [NT*TW-1:0] t1, t2;
      always_ff @(posedge clk) begin
        if (step) t1 <= tmem[cur_nf];
        if (en && v1) t2 <= t1;
      end

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
