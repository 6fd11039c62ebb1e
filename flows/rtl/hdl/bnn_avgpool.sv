// SPDX-License-Identifier: BSD-3-Clause
// bnn_quant_avgpool: lane-wise quantized average (sum, then right shift) over a pooling window,
// AXI-stream in and out.
//
// Written for the bnn-fpga toolkit as a drop-in RTL replacement for FINN's Pool_hls with
// Function QuantAvgPool. Plain inferable SystemVerilog without vendor primitives, so that the
// same source simulates in Verilator and synthesises in Vivado or Yosys.
//
//   y[p] = (sum_k x[k][p]) >> SHIFT        (arithmetic shift, i.e. floor, when SIGNED = 1)
//
// SHIFT is the shift of FINN's Python model of QuantAvgPool (bit length of (2^IN_BITS-1)*K
// minus OUT_BITS, at least 0), computed by the generator; the generator also checks that every
// result fits OUT_BITS, so the low OUT_BITS of the shifted ACC_BITS-wide sum are exact.
//
// Stream order is that of FINN's depthwise sliding window generator in front of the pool: an
// output pixel arrives as NUM_FOLDS = C/PE groups of K consecutive words, each word holding PE
// elements of IN_BITS (element p of a word is channel f*PE + p, little end first). Every K
// input words produce one output word of PE elements of OUT_BITS.
//
// Timing: one input word per cycle; the output register holds the result one cycle after the
// window's last word. Only the last word of a window waits for a full output register that
// the consumer does not take, so a window takes K cycles without backpressure.
module bnn_quant_avgpool #(
    parameter integer PE = 4,
    parameter integer K = 4,
    parameter integer NUM_FOLDS = 1,
    parameter integer IN_BITS = 6,
    parameter integer SIGNED = 1,
    parameter integer ACC_BITS = 9,
    parameter integer SHIFT = 0,
    parameter integer OUT_BITS = 8,
    parameter integer IN_WIDTH = ((PE * IN_BITS + 7) / 8) * 8,
    parameter integer OUT_WIDTH = ((PE * OUT_BITS + 7) / 8) * 8
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
    // NUM_FOLDS only documents the stream: the folds are independent windows of K words.
    // ACC_BITS >= IN_BITS and ACC_BITS >= OUT_BITS (the generator guarantees both).
    localparam integer AW = PE * ACC_BITS;
    localparam integer OW = PE * OUT_BITS;
    localparam integer K_BITS = K > 1 ? $clog2(K) : 1;

    reg  [K_BITS-1:0]    k;
    reg  [AW-1:0]        acc;
    reg  [OUT_WIDTH-1:0] odata;
    reg                  ovalid;
    wire                 last = (k == K - 1);
    assign in0_V_TREADY = !last || !ovalid || out0_V_TREADY;
    wire                 fire = in0_V_TVALID && in0_V_TREADY;

    // ---- lane-wise running sum and the shifted result ---------------------------------------
    wire [AW-1:0] acc_next;
    wire [OW-1:0] result;
    genvar p;
    generate
        for (p = 0; p < PE; p = p + 1) begin : g_pe
            wire [IN_BITS-1:0]  b = in0_V_TDATA[p*IN_BITS +: IN_BITS];
            wire [ACC_BITS-1:0] bx;
            wire [ACC_BITS-1:0] base = (k == 0) ? {ACC_BITS{1'b0}} : acc[p*ACC_BITS +: ACC_BITS];
            wire [ACC_BITS-1:0] s = base + bx;
            wire [ACC_BITS-1:0] sh;
            if (SIGNED != 0) begin : g_signed
                wire signed [IN_BITS-1:0]  bs = b;
                wire signed [ACC_BITS-1:0] ss = s;
                assign bx = bs;            // a signed operand widens by sign extension
                assign sh = ss >>> SHIFT;  // floor division by 2^SHIFT, as numpy right_shift
            end else begin : g_unsigned
                assign bx = b;
                assign sh = s >> SHIFT;
            end
            assign acc_next[p*ACC_BITS +: ACC_BITS] = s;
            assign result[p*OUT_BITS +: OUT_BITS] = sh[OUT_BITS-1:0];
        end
    endgenerate

    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            k <= 0;
            ovalid <= 1'b0;
        end else begin
            if (out0_V_TREADY) ovalid <= 1'b0;
            if (fire) begin
                if (last) begin
                    k <= 0;
                    ovalid <= 1'b1;
                end else begin
                    k <= k + 1'b1;
                end
            end
        end
    end

    always @(posedge ap_clk) begin
        if (fire) acc <= acc_next;
    end

    generate
        if (OUT_WIDTH > OW) begin : g_pad
            always @(posedge ap_clk) if (fire && last) odata <= {{(OUT_WIDTH-OW){1'b0}}, result};
        end else begin : g_nopad
            always @(posedge ap_clk) if (fire && last) odata <= result;
        end
    endgenerate

    assign out0_V_TDATA = odata;
    assign out0_V_TVALID = ovalid;
endmodule
