// SPDX-License-Identifier: BSD-3-Clause
// bnn_dup_streams: one AXI-stream duplicated to N_OUT AXI-streams (fork).
//
// Written for the bnn-fpga toolkit as a drop-in RTL replacement for FINN's DuplicateStreams_hls
// (finn-hlslib StreamingDup). Plain inferable SystemVerilog without vendor primitives, so that
// the same source simulates in Verilator and synthesises in Vivado or Yosys.
//
// Every input word appears once on every output, in order. The word is held in one register
// with a valid bit per output: output j presents it until its consumer takes it, then drops
// its valid bit, so a slow consumer neither loses words nor receives one twice. The next input
// word is taken in the cycle in which every output has taken (or is taking) the current one,
// so the unit passes one word per cycle when every consumer is ready.
//
// Outputs are packed on one bus here: output j is out_V_TDATA[j*WIDTH +: WIDTH],
// out_V_TVALID[j], out_V_TREADY[j]. The wrapper that flows/rtl/streams_op.py generates for a
// FINN node exposes them with FINN's names out0_V .. out{N_OUT-1}_V.
module bnn_dup_streams #(
    parameter integer N_OUT = 2,
    parameter integer WIDTH = 8
) (
    input  wire                    ap_clk,
    input  wire                    ap_rst_n,
    input  wire [WIDTH-1:0]        in0_V_TDATA,
    input  wire                    in0_V_TVALID,
    output wire                    in0_V_TREADY,
    output wire [N_OUT*WIDTH-1:0]  out_V_TDATA,
    output wire [N_OUT-1:0]        out_V_TVALID,
    input  wire [N_OUT-1:0]        out_V_TREADY
);
    reg [WIDTH-1:0] data;
    reg [N_OUT-1:0] pending;  // output j has not yet taken the held word
    // every output is empty or empties in this cycle
    wire free = &(~pending | out_V_TREADY);
    wire take = ap_rst_n && free && in0_V_TVALID;
    assign in0_V_TREADY = ap_rst_n && free;

    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            pending <= {N_OUT{1'b0}};
        end else if (take) begin
            data <= in0_V_TDATA;
            pending <= {N_OUT{1'b1}};
        end else begin
            pending <= pending & ~out_V_TREADY;
        end
    end

    assign out_V_TDATA = {N_OUT{data}};
    assign out_V_TVALID = pending;
endmodule
