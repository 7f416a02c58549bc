// Stand-in for Vivado HLS's ap_axi_sdata.h (same member names and widths as its ap_axiu), for
// bnn2fpga's g++ C simulation only.  Vivado/Vitis HLS use their own header: this directory is
// never on the synthesis include path.
#ifndef BNN_CSIM_AP_AXI_SDATA_H
#define BNN_CSIM_AP_AXI_SDATA_H

#include "../bnn_ap_types.h"

template <int D, int U, int TI, int TD>
struct ap_axiu {
  ap_uint<D> data;
  ap_uint<(D + 7) / 8> keep;
  ap_uint<(D + 7) / 8> strb;
  ap_uint<U> user;
  ap_uint<1> last;
  ap_uint<TI> id;
  ap_uint<TD> dest;
};

#endif
