// SPDX-License-Identifier: BSD-3-Clause
// bnn_global_accpool: per-channel sum over all pixels of a frame, AXI-stream in and out.
//
// Written for the bnn-fpga toolkit as a drop-in RTL replacement for FINN's GlobalAccPool_hls
// (finn-hlslib AccPool_Batch). Plain inferable SystemVerilog without vendor primitives, so that
// the same source simulates in Verilator and synthesises in Vivado or Yosys.
//
//   y[c] = sum over the NUM_PIX pixels of a frame of x[pixel][c]
//
// Stream order is FINN's GlobalAccPool folding: a pixel arrives as NUM_FOLDS = C/PE words of PE
// elements of IN_BITS (element p of word f is channel f*PE + p, little end first); a frame is
// NUM_PIX pixels. After the frame's last pixel the NUM_FOLDS sums leave as NUM_FOLDS words of
// PE elements of OUT_BITS. Elements are unsigned unless SIGNED = 1 (two's complement; the
// input is sign-extended, the output is two's complement).
//
// Memory: one accumulator word (PE lanes of ACC_BITS) per channel fold, read asynchronously
// (distributed RAM or registers) and written back in the same cycle. The words of the last
// pixel go straight to the output register with their final sums, so the output overlaps the
// last pixel's input: a frame takes NUM_PIX*NUM_FOLDS cycles plus one without backpressure.
// Only a word of the last pixel waits for a full output register that the consumer does not
// take.
module bnn_global_accpool #(
    parameter integer PE = 4,
    parameter integer NUM_FOLDS = 4,
    parameter integer NUM_PIX = 4,
    parameter integer IN_BITS = 6,
    parameter integer SIGNED = 1,
    parameter integer OUT_BITS = 16,
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
    localparam integer ACC_BITS = OUT_BITS > IN_BITS ? OUT_BITS : IN_BITS;
    localparam integer AW = PE * ACC_BITS;
    localparam integer OW = PE * OUT_BITS;
    localparam integer F_BITS = NUM_FOLDS > 1 ? $clog2(NUM_FOLDS) : 1;
    localparam integer P_BITS = NUM_PIX > 1 ? $clog2(NUM_PIX) : 1;

    reg  [AW-1:0]        acc [0:NUM_FOLDS-1];
    reg  [F_BITS-1:0]    fold;
    reg  [P_BITS-1:0]    pix;
    reg  [OUT_WIDTH-1:0] odata;
    reg                  ovalid;
    wire                 first = (pix == 0);
    wire                 last = (pix == NUM_PIX - 1);
    assign in0_V_TREADY = !last || !ovalid || out0_V_TREADY;
    wire                 fire = in0_V_TVALID && in0_V_TREADY;
    wire [AW-1:0]        held = acc[fold];

    // ---- lane-wise running sum -------------------------------------------------------------
    wire [AW-1:0] sum;
    wire [OW-1:0] result;
    genvar p;
    generate
        for (p = 0; p < PE; p = p + 1) begin : g_pe
            wire [IN_BITS-1:0]  b = in0_V_TDATA[p*IN_BITS +: IN_BITS];
            wire [ACC_BITS-1:0] bx;
            if (SIGNED != 0) begin : g_sext
                wire signed [IN_BITS-1:0] bs = b;
                assign bx = bs;  // a signed operand widens by sign extension
            end else begin : g_zext
                assign bx = b;
            end
            wire [ACC_BITS-1:0] base = first ? {ACC_BITS{1'b0}} : held[p*ACC_BITS +: ACC_BITS];
            wire [ACC_BITS-1:0] s = base + bx;
            assign sum[p*ACC_BITS +: ACC_BITS] = s;
            assign result[p*OUT_BITS +: OUT_BITS] = s[OUT_BITS-1:0];
        end
    endgenerate

    always @(posedge ap_clk) begin
        if (fire) acc[fold] <= sum;
    end

    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            fold <= 0;
            pix <= 0;
            ovalid <= 1'b0;
        end else begin
            if (out0_V_TREADY) ovalid <= 1'b0;
            if (fire) begin
                if (last) ovalid <= 1'b1;
                if (fold == NUM_FOLDS - 1) begin
                    fold <= 0;
                    pix <= last ? {P_BITS{1'b0}} : pix + 1'b1;
                end else begin
                    fold <= fold + 1'b1;
                end
            end
        end
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
