// SPDX-License-Identifier: BSD-3-Clause
// bnn_maxpool: lane-wise maximum over a pooling window, AXI-stream in and out.
//
// Written for the bnn-fpga toolkit as a drop-in RTL replacement for FINN's Pool_hls with
// Function MaxPool (finn-hlslib Pool_batch with MaxPoolFunction). Plain inferable
// SystemVerilog without vendor primitives, so that the same source simulates in Verilator and
// synthesises in Vivado or Yosys.
//
// Stream order is that of FINN's depthwise sliding window generator in front of the pool: an
// output pixel arrives as NUM_FOLDS = C/PE groups of K consecutive words, each word holding PE
// elements of ELEM_BITS (element p of a word is channel f*PE + p, little end first). Every K
// input words produce one output word of PE elements:  y[p] = max_k x[k][p].
// Elements are unsigned unless SIGNED = 1 (two's complement); BINARY 0/1 gives y = OR.
//
// Timing: one input word per cycle; the output register holds the window's maximum one cycle
// after its last word. Only the last word of a window waits for a full output register that
// the consumer does not take, so a window takes K cycles without backpressure.
module bnn_maxpool #(
    parameter integer PE = 4,
    parameter integer K = 4,
    parameter integer NUM_FOLDS = 1,
    parameter integer ELEM_BITS = 1,
    parameter integer SIGNED = 0,
    parameter integer IN_WIDTH = ((PE * ELEM_BITS + 7) / 8) * 8,
    parameter integer OUT_WIDTH = ((PE * ELEM_BITS + 7) / 8) * 8
) (
    input  wire                  ap_clk,
    input  wire                  ap_rst_n,
    input  wire [IN_WIDTH-1:0]   in0_V_TDATA,
    input  wire                  in0_V_TVALID,
    output wire                  in0_V_TREADY,
    output wire [OUT_WIDTH-1:0]  out0_V_TDATA,
    output wire                  out0_V_TVALID,
    input  wire                  out0_V_TREADY
);
    // NUM_FOLDS only documents the stream: the folds are independent windows of K words
    localparam integer W = PE * ELEM_BITS;
    localparam integer K_BITS = K > 1 ? $clog2(K) : 1;
    // flipping the sign bit maps two's complement order onto unsigned order
    localparam [ELEM_BITS-1:0] BIAS =
        (SIGNED != 0) ? ({{(ELEM_BITS-1){1'b0}}, 1'b1} << (ELEM_BITS-1)) : {ELEM_BITS{1'b0}};

    reg  [K_BITS-1:0] k;
    reg  [W-1:0]      acc;
    reg  [OUT_WIDTH-1:0] odata;
    reg               ovalid;
    wire              last = (k == K - 1);
    assign in0_V_TREADY = !last || !ovalid || out0_V_TREADY;
    wire              fire = in0_V_TVALID && in0_V_TREADY;
    wire [W-1:0]      x = in0_V_TDATA[W-1:0];

    // ---- lane-wise maximum of the running value and the incoming word --------------------
    wire [W-1:0] acc_next;
    genvar p;
    generate
        for (p = 0; p < PE; p = p + 1) begin : g_pe
            wire [ELEM_BITS-1:0] a = acc[p*ELEM_BITS +: ELEM_BITS];
            wire [ELEM_BITS-1:0] b = x[p*ELEM_BITS +: ELEM_BITS];
            wire                 b_wins = (k == 0) || ((b ^ BIAS) > (a ^ BIAS));
            assign acc_next[p*ELEM_BITS +: ELEM_BITS] = b_wins ? b : a;
        end
    endgenerate

    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            k <= 0;
            ovalid <= 1'b0;
        end else begin
            if (out0_V_TREADY) ovalid <= 1'b0;
            if (fire) begin
                acc <= acc_next;
                if (last) begin
                    k <= 0;
                    ovalid <= 1'b1;
                end else begin
                    k <= k + 1'b1;
                end
            end
        end
    end

    generate
        if (OUT_WIDTH > W) begin : g_pad
            always @(posedge ap_clk) if (fire && last) odata <= {{(OUT_WIDTH-W){1'b0}}, acc_next};
        end else begin : g_nopad
            always @(posedge ap_clk) if (fire && last) odata <= acc_next;
        end
    endgenerate

    assign out0_V_TDATA = odata;
    assign out0_V_TVALID = ovalid;
endmodule
