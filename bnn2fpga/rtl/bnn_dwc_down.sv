// bnn_dwc_down: width converter for IWB = R*OWB (R >= 2): one input beat makes R output
// beats, the low bits first.
//
// Two word registers in a line: a holding register takes the input word, and a word
// register shifts OWB bits out per output beat.  The word register reloads from the
// holding register on the cycle its last slice leaves; the holding register is free again
// the cycle after, so it takes one word per 2 cycles, enough for R >= 2, and a producer
// that sends one word per R cycles keeps the output busy every cycle.  s_tready is the
// holding register being empty (a register, no path from m_tready).  Per bit: a 2:1 mux
// (held / shifted) with a clock enable, one LUT.  (A bypass from the input into the word
// register would save one cycle of latency but makes that mux 3:1, which ABC maps at up
// to 2.4 LUTs per bit.)
//
// Parameters
//   IWB  input beat bits (a multiple of OWB)
//   OWB  output beat bits
module bnn_dwc_down #(
    parameter int IWB = 32,
    parameter int OWB = 8
) (
    input  logic           clk,
    input  logic           rst_n,
    input  logic [IWB-1:0] s_tdata,
    input  logic           s_tvalid,
    output logic           s_tready,
    output logic [OWB-1:0] m_tdata,
    output logic           m_tvalid,
    input  logic           m_tready
);
  localparam int R = IWB / OWB;
  localparam int CW = $clog2(R + 1);

  logic [IWB-1:0] shreg;  // the word being sent, next slice in the low bits
  logic [CW-1:0] left;    // slices of it not yet sent
  logic [IWB-1:0] hold;
  logic hold_valid;

  assign m_tdata = shreg[OWB-1:0];
  assign m_tvalid = left != '0;
  assign s_tready = !hold_valid;

  wire in_fire = s_tvalid && s_tready;
  // the word register takes the held word on the cycle its last slice leaves
  wire drained = left == '0 || (left == CW'(1) && m_tready);
  wire load = drained && hold_valid;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      left <= '0;
      hold_valid <= 1'b0;
    end else begin
      if (drained) left <= hold_valid ? CW'(R) : '0;
      else if (m_tready) left <= left - 1'b1;
      if (load) hold_valid <= 1'b0;
      else if (in_fire) hold_valid <= 1'b1;
    end
  end

  always_ff @(posedge clk) begin
    if (load) shreg <= hold;
    else if (m_tready && m_tvalid) shreg <= shreg >> OWB;
    if (in_fire) hold <= s_tdata;
  end
endmodule
