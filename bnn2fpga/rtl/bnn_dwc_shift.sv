// bnn_dwc_shift: the general width converter (bnn_dwc picks it when neither width divides
// the other): a bit stream in IWB-bit beats out as OWB-bit beats, for any pair of widths (the stream is the frame's codes flattened channels-last, so the element
// boundaries need no special care as long as both widths hold whole elements).
//
// Parameters
//   IWB  input beat bits
//   OWB  output beat bits
//
// A shift buffer of CAP = IWB + 2*OWB - 1 bits holding cnt valid bits (LSB first):
// out valid iff cnt >= OWB; in ready iff cnt + IWB <= CAP.  That capacity is the smallest
// that sustains the faster side at one beat per cycle (the slower side is then the rate);
// both handshake signals come from registers.  Its cost is the barrel shifter that
// places an input beat at the fill count; the ratio converters need none.
module bnn_dwc_shift #(
    parameter int IWB = 8,
    parameter int OWB = 4
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
  localparam int CAP = IWB + 2 * OWB - 1;
  localparam int CW = $clog2(CAP + 1);

  logic [CAP-1:0] buffer;
  logic [CW-1:0] cnt;

  assign m_tvalid = cnt >= CW'(OWB);
  assign s_tready = cnt <= CW'(2 * OWB - 1);
  assign m_tdata = buffer[OWB-1:0];

  wire in_fire = s_tvalid && s_tready;
  wire out_fire = m_tvalid && m_tready;

  logic [CAP-1:0] kept;
  logic [CW-1:0] kept_cnt;
  assign kept = out_fire ? buffer >> OWB : buffer;
  assign kept_cnt = out_fire ? cnt - CW'(OWB) : cnt;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      buffer <= '0;
      cnt <= '0;
    end else begin
      buffer <= kept | (in_fire ? CAP'(s_tdata) << kept_cnt : '0);
      cnt <= kept_cnt + (in_fire ? CW'(IWB) : '0);
    end
  end
endmodule
