// bnn_dwc: width converter: a bit stream in IWB-bit beats out as OWB-bit beats (the frame's
// codes flattened channels-last, so element boundaries need no care as long as both widths
// hold whole elements).  It picks the cheapest structure for the pair of widths:
//   OWB = R*IWB  bnn_dwc_up     collect R beats in a shift register (no LUT per bit)
//   IWB = R*OWB  bnn_dwc_down   shift R slices out of a loaded word (a 2:1 mux per bit)
//   otherwise    bnn_dwc_shift  a shift buffer with a shifter by gcd(IWB, OWB)-bit units
// Each sustains one beat per cycle on its faster side; ready and valid come from registers.
//
// Parameters
//   IWB  input beat bits
//   OWB  output beat bits
module bnn_dwc #(
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
  if (OWB % IWB == 0 && OWB > IWB) begin : g_up
    bnn_dwc_up #(.IWB(IWB), .OWB(OWB)) u (.*);
  end else if (IWB % OWB == 0 && IWB > OWB) begin : g_down
    bnn_dwc_down #(.IWB(IWB), .OWB(OWB)) u (.*);
  end else begin : g_shift
    bnn_dwc_shift #(.IWB(IWB), .OWB(OWB)) u (.*);
  end
endmodule
