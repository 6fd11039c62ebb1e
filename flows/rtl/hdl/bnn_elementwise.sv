// SPDX-License-Identifier: BSD-3-Clause
// bnn_elementwise: lane-wise integer add / mul / sub of two AXI streams.
//
// Written for the bnn-fpga toolkit as a drop-in RTL replacement for FINN's ElementwiseAdd_hls,
// ElementwiseMul_hls (and ElementwiseSub_hls) with both operands streamed (lhs_style and
// rhs_style "input"). Plain inferable SystemVerilog without vendor primitives, so that the same
// source simulates in Verilator and synthesises in Vivado or Yosys.
//
// Streams (FINN's folded order, element 0 of a word in the least significant bits):
//   in0_V  lhs: PIXELS * NUM_FOLDS words per frame of PE elements of LHS_BITS
//   in1_V  rhs: RHS_BROADCAST = 0: one word of PE elements of RHS_BITS per lhs word
//               RHS_BROADCAST = 1: NUM_FOLDS words per frame (a per-channel vector, e.g. a
//               squeeze-excitation gate broadcast over all PIXELS pixels of the frame)
//   out0_V  PE elements of OUT_BITS per lhs word:  y[p] = lhs[p] OP rhs[p]
// Operands are unsigned unless LHS_SIGNED / RHS_SIGNED (two's complement). The result is the
// exact integer result reduced to its OUT_BITS low bits (two's complement); FINN derives the
// output datatype wide enough for the exact result, so this equals FINN's Python model.
//
// Broadcast rhs, frame boundary and FIFO assumption: the rhs word of fold f is consumed together
// with the lhs word of (pixel 0, fold f) of each frame, stored in a NUM_FOLDS-word buffer and
// reused for pixels 1 .. PIXELS-1. This is exactly the read order of FINN's HLS ElementwiseBinary
// (it reads in1_V only while the broadcast loop indices are 0), so FIFO depths sized for the
// HLS layer stay valid. The rhs words of frame f+1 may arrive while frame f is still being
// processed: they wait in the rhs FIFO (or upstream) until pixel 0 of frame f+1, because
// finishing frame f needs lhs words only. Hence any rhs FIFO depth (even 2) is deadlock-free
// for this layer; the lhs FIFO must cover the gate path's latency (about a frame), as for HLS.
//
// Timing: one lhs word per cycle; a one-word output register (one cycle latency) that stalls
// both inputs while it is full and not taken.
module bnn_elementwise #(
    parameter integer OP = 0,            // 0 add, 1 mul, 2 sub (lhs - rhs)
    parameter integer PE = 1,
    parameter integer LHS_BITS = 8,
    parameter integer RHS_BITS = 8,
    parameter integer OUT_BITS = 9,
    parameter integer LHS_SIGNED = 1,
    parameter integer RHS_SIGNED = 1,
    parameter integer RHS_BROADCAST = 0,
    parameter integer NUM_FOLDS = 1,      // C / PE
    parameter integer PIXELS = 1,         // lhs words per frame / NUM_FOLDS
    parameter integer IN0_WIDTH = ((PE * LHS_BITS + 7) / 8) * 8,
    parameter integer IN1_WIDTH = ((PE * RHS_BITS + 7) / 8) * 8,
    parameter integer OUT_WIDTH = ((PE * OUT_BITS + 7) / 8) * 8
) (
    input  wire                  ap_clk,
    input  wire                  ap_rst_n,
    input  wire [IN0_WIDTH-1:0]  in0_V_TDATA,
    input  wire                  in0_V_TVALID,
    output wire                  in0_V_TREADY,
    input  wire [IN1_WIDTH-1:0]  in1_V_TDATA,
    input  wire                  in1_V_TVALID,
    output wire                  in1_V_TREADY,
    output wire [OUT_WIDTH-1:0]  out0_V_TDATA,
    output wire                  out0_V_TVALID,
    input  wire                  out0_V_TREADY
);
    localparam integer LW = PE * LHS_BITS;
    localparam integer RW = PE * RHS_BITS;
    localparam integer OW = PE * OUT_BITS;
    // wide enough for the exact result of any of the operations, and for OUT_BITS
    localparam integer EXACT = LHS_BITS + RHS_BITS + 2;
    localparam integer XW = OUT_BITS > EXACT ? OUT_BITS : EXACT;
    localparam integer F_BITS = NUM_FOLDS > 1 ? $clog2(NUM_FOLDS) : 1;
    localparam integer P_BITS = PIXELS > 1 ? $clog2(PIXELS) : 1;

    // ---- handshake -------------------------------------------------------------------------
    reg                  ovalid;
    reg  [OUT_WIDTH-1:0] odata;
    wire                 room = !ovalid || out0_V_TREADY;
    wire                 need_rhs;          // this lhs word takes a word from in1_V
    wire                 fire = in0_V_TVALID && (!need_rhs || in1_V_TVALID) && room;
    assign in0_V_TREADY = room && (!need_rhs || in1_V_TVALID);
    assign in1_V_TREADY = room && need_rhs && in0_V_TVALID;

    wire [LW-1:0] a = in0_V_TDATA[LW-1:0];
    wire [RW-1:0] b;                         // the rhs word for this lhs word

    generate
        if (RHS_BROADCAST != 0) begin : g_bcast
            reg [F_BITS-1:0] fold;
            reg [P_BITS-1:0] pix;
            reg [RW-1:0]     gate [0:NUM_FOLDS-1];
            assign need_rhs = (pix == 0);
            assign b = need_rhs ? in1_V_TDATA[RW-1:0] : gate[fold];
            always @(posedge ap_clk) begin
                if (!ap_rst_n) begin
                    fold <= 0;
                    pix <= 0;
                end else if (fire) begin
                    if (fold == NUM_FOLDS - 1) begin
                        fold <= 0;
                        pix <= (pix == PIXELS - 1) ? {P_BITS{1'b0}} : pix + 1'b1;
                    end else begin
                        fold <= fold + 1'b1;
                    end
                end
            end
            always @(posedge ap_clk) if (fire && need_rhs) gate[fold] <= in1_V_TDATA[RW-1:0];
        end else begin : g_stream
            assign need_rhs = 1'b1;
            assign b = in1_V_TDATA[RW-1:0];
        end
    endgenerate

    // ---- lane-wise operation ---------------------------------------------------------------
    wire [OW-1:0] y;
    genvar p;
    generate
        for (p = 0; p < PE; p = p + 1) begin : g_pe
            wire [LHS_BITS-1:0] ai = a[p*LHS_BITS +: LHS_BITS];
            wire [RHS_BITS-1:0] bi = b[p*RHS_BITS +: RHS_BITS];
            // one extra bit makes either operand a two's complement value (sign- or
            // zero-extended); signed arithmetic at XW bits is then exact, and the narrow signed
            // operands let synthesis size the multiplier (one DSP48 up to 26 x 17 bits)
            wire signed [LHS_BITS:0] ax = {LHS_SIGNED != 0 && ai[LHS_BITS-1], ai};
            wire signed [RHS_BITS:0] bx = {RHS_SIGNED != 0 && bi[RHS_BITS-1], bi};
            wire signed [XW-1:0] r = (OP == 1) ? ax * bx : (OP == 2) ? ax - bx : ax + bx;
            assign y[p*OUT_BITS +: OUT_BITS] = r[OUT_BITS-1:0];
        end
    endgenerate

    always @(posedge ap_clk) begin
        if (!ap_rst_n) ovalid <= 1'b0;
        else if (fire) ovalid <= 1'b1;
        else if (out0_V_TREADY) ovalid <= 1'b0;
    end

    generate
        if (OUT_WIDTH > OW) begin : g_pad
            always @(posedge ap_clk) if (fire) odata <= {{(OUT_WIDTH-OW){1'b0}}, y};
        end else begin : g_nopad
            always @(posedge ap_clk) if (fire) odata <= y;
        end
    endgenerate

    assign out0_V_TDATA = odata;
    assign out0_V_TVALID = ovalid;
endmodule
