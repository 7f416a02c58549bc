// bnn_threshold: thresholds on fixed-point / integer codes (IR Threshold, FINN's
// Thresholding_Batch), PE lanes per beat: code = #{t : x' >= T[c][t]}, x' = -x for a
// negated channel (a sign after a negative scale), else x.
//
// Parameters
//   PE, NF       lanes per beat, channel folds (C = NF * PE, lane p = channel nf*PE + p)
//   IB           input code bits
//   IN_SIGNED    1: the input codes are signed (fixed/int); 0: unsigned (uint codes)
//   NT, TW       thresholds per channel and their bits (signed)
//   OB           output code bits (1 for a bipolar/unipolar sign)
//   THRESH_FILE  prefix of THRESH_FILE_pe<ppp>.mem: NF words of NT*TW threshold bits
//                (threshold j at [j*TW +: TW]) and the negate flag on top
//                (bnn2fpga.packing.pack_fields)
// One stage: the ROM is read combinationally, the comparisons land in the output register.
module bnn_threshold #(
    parameter int PE = 1,
    parameter int NF = 1,
    parameter int IB = 8,
    parameter int IN_SIGNED = 1,
    parameter int NT = 1,
    parameter int TW = 8,
    parameter int OB = 1,
    parameter THRESH_FILE = "thresholds"
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic [PE*IB-1:0]   s_tdata,
    input  logic               s_tvalid,
    output logic               s_tready,
    output logic [PE*OB-1:0]   m_tdata,
    output logic               m_tvalid,
    input  logic               m_tready
);
  localparam int CW = NT * TW + 1;
  localparam int NFW = NF > 1 ? $clog2(NF) : 1;
  localparam int XW = (IB + 1 > TW ? IB + 1 : TW);   // x, -x and every threshold

  logic en;
  assign en = !m_tvalid || m_tready;
  assign s_tready = en;
  wire fire = s_tvalid && en;

  logic [NFW-1:0] nf;
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      nf <= '0;
      m_tvalid <= 1'b0;
    end else begin
      if (fire) nf <= (nf == NFW'(NF - 1)) ? '0 : nf + 1'b1;
      if (en) m_tvalid <= s_tvalid;
    end
  end

  for (genvar p = 0; p < PE; p++) begin : g_pe
    localparam logic [23:0] IDX = {8'(48 + p / 100 % 10), 8'(48 + p / 10 % 10), 8'(48 + p % 10)};
    logic [CW-1:0] tmem[NF];
    initial $readmemh({THRESH_FILE, "_pe", IDX, ".mem"}, tmem);

    wire [CW-1:0] k = tmem[nf];
    wire [IB-1:0] xb = s_tdata[p*IB+:IB];
    wire signed [IB:0] x = {IN_SIGNED != 0 ? xb[IB-1] : 1'b0, xb};  // sign- or zero-extended
    wire signed [XW-1:0] xs = k[CW-1] ? -(XW'(x)) : XW'(x);  // -(..): yosys reads -XW'(x) as a negative-size cast
    logic [OB-1:0] code;
    always_comb begin
      code = '0;
      for (int j = 0; j < NT; j++) begin
        code = code + OB'(xs >= XW'($signed(k[j*TW+:TW])));
      end
    end
    always_ff @(posedge clk) begin
      if (fire) m_tdata[p*OB+:OB] <= code;
    end
  end
endmodule
