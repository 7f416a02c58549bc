// bnn_dwc_up: width converter for OWB = R*IWB (R >= 2): R input beats make one output beat,
// the first beat in the low bits.
//
// The first R-1 beats shift down a register from the top (beat 0 ends in the low slot),
// and the R-th beat loads {beat, register} into the output word.  Every flip-flop either
// holds or takes one fixed source, so the data path needs no LUTs, only clock enables.
// The output word is a second buffer: the next R-1 beats arrive while it waits, so a
// consumer that takes one word per R cycles never stalls the input.
//
// Parameters
//   IWB  input beat bits
//   OWB  output beat bits (a multiple of IWB)
module bnn_dwc_up #(
    parameter int IWB = 8,
    parameter int OWB = 32
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
  localparam int R = OWB / IWB;
  localparam int CW = $clog2(R);

  logic [OWB-IWB-1:0] partial;  // beats 0..R-2 of the word being collected
  logic [CW-1:0] cnt;           // beats in partial
  logic [OWB-1:0] word;
  logic word_valid;

  wire last = cnt == CW'(R - 1);
  // the last beat needs the word register free (a register-only condition)
  assign s_tready = !(last && word_valid);
  assign m_tdata = word;
  assign m_tvalid = word_valid;

  wire in_fire = s_tvalid && s_tready;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      cnt <= '0;
      word_valid <= 1'b0;
    end else begin
      if (in_fire) cnt <= last ? '0 : cnt + 1'b1;
      if (in_fire && last) word_valid <= 1'b1;
      else if (m_tready) word_valid <= 1'b0;
    end
  end

  always_ff @(posedge clk) begin
    if (in_fire && !last) partial <= (OWB - IWB)'({s_tdata, partial} >> IWB);
    if (in_fire && last) word <= {s_tdata, partial};
  end
endmodule
