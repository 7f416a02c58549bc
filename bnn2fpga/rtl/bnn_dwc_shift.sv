// bnn_dwc_shift: the general width converter (bnn_dwc picks it when neither width divides
// the other): a bit stream in IWB-bit beats out as OWB-bit beats, for any pair of widths
// (the stream is the frame's codes flattened channels-last, so element boundaries need no
// care as long as both widths hold whole elements).
//
// Parameters
//   IWB  input beat bits
//   OWB  output beat bits
//
// Both widths are whole units of G = gcd(IWB, OWB) bits.  A shift buffer of
// CAPU = IU + 2*OU - 1 units (IU = IWB/G, OU = OWB/G) holds cnt valid units, LSB first:
// out valid iff cnt >= OU; in ready iff cnt + IU <= CAPU.  That capacity is the smallest
// that sustains the faster side at one beat per cycle (the slower side is then the rate);
// both handshake signals come from registers.  Its cost is the shifter that places an
// input beat at the fill count; counting whole units keeps its select narrow (a bit count
// would let it shift by amounts that never occur).  The ratio converters need none.
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
  function automatic integer gcd(input integer a, input integer b);
    integer x, y, t;
    begin
      x = a;
      y = b;
      while (y != 0) begin
        t = x % y;
        x = y;
        y = t;
      end
      gcd = x;
    end
  endfunction

  // widths in units of G = gcd(IWB, OWB) bits: the fill count never holds a fraction of one
  localparam int G = gcd(IWB, OWB);
  localparam int IU = IWB / G;
  localparam int OU = OWB / G;
  localparam int CAPU = IU + 2 * OU - 1;
  localparam int CAP = CAPU * G;
  localparam int CW = $clog2(CAPU + 1);
  localparam int SW = $clog2(2 * OU);   // a beat enters only at fill counts below 2*OU

  logic [CAP-1:0] buffer;
  logic [CW-1:0] cnt;

  assign m_tvalid = cnt >= CW'(OU);
  assign s_tready = cnt <= CW'(2 * OU - 1);
  assign m_tdata = buffer[OWB-1:0];

  wire in_fire = s_tvalid && s_tready;
  wire out_fire = m_tvalid && m_tready;

  logic [CAP-1:0] kept, placed;
  logic [CW-1:0] kept_cnt;
  assign kept = out_fire ? buffer >> OWB : buffer;
  assign kept_cnt = out_fire ? cnt - CW'(OU) : cnt;

  // the input beat placed at the fill count: a shifter by whole units, one per bit plane
  for (genvar j = 0; j < G; j++) begin : g_plane
    logic [IU-1:0] plane;
    logic [CAPU-1:0] shifted;
    for (genvar i = 0; i < IU; i++) begin : g_in
      assign plane[i] = s_tdata[i*G + j];
    end
    assign shifted = CAPU'(plane) << kept_cnt[SW-1:0];
    for (genvar k = 0; k < CAPU; k++) begin : g_out
      assign placed[k*G + j] = shifted[k];
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      buffer <= '0;
      cnt <= '0;
    end else begin
      buffer <= kept | (in_fire ? placed : '0);
      cnt <= kept_cnt + (in_fire ? CW'(IU) : '0);
    end
  end
endmodule
