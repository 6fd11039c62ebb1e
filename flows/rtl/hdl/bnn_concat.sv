// SPDX-License-Identifier: BSD-3-Clause
// bnn_concat: N_IN AXI-streams concatenated along the channel axis, AXI-stream out.
//
// Written for the bnn-fpga toolkit as a drop-in RTL replacement for FINN's StreamingConcat_hls
// (finn-hlslib StreamingConcat). Plain inferable SystemVerilog without vendor primitives, so
// that the same source simulates in Verilator and synthesises in Vivado or Yosys.
//
// Per vector, the output stream carries FOLDS[0] words of input 0, then FOLDS[1] words of
// input 1, and so on (FOLDS[i] = channels of input i / SIMD); all words hold SIMD elements,
// element s in bits [s*bits +: bits] (little end first). Every element is converted from its
// input datatype to the output datatype of OUT_BITS bits:
//   MODE 0  unsigned input, zero-extended
//   MODE 1  two's-complement input, sign-extended
//   MODE 2  BIPOLAR input (bit 1 = +1, bit 0 = -1), written as the integer +1 or -1
// Per-input parameters are packed 32 bits per input: FOLDS[32*i +: 32], IN_BITS[32*i +: 32],
// MODE[32*i +: 32]. Inputs share one bus with a stride of IN_WIDTH bits: input i is
// in_V_TDATA[i*IN_WIDTH +: IN_WIDTH], in_V_TVALID[i], in_V_TREADY[i]. The wrapper that
// flows/rtl/streams_op.py generates for a FINN node exposes FINN's names in0_V .. and out0_V.
//
// Timing: one word per cycle into an output register; a full output register that the
// consumer does not take stalls the unit. A vector takes sum(FOLDS) cycles.
module bnn_concat #(
    parameter integer N_IN = 2,
    parameter integer SIMD = 1,
    parameter integer OUT_BITS = 4,
    parameter [32*N_IN-1:0] FOLDS = {32'd16, 32'd16},
    parameter [32*N_IN-1:0] IN_BITS = {32'd4, 32'd4},
    parameter [32*N_IN-1:0] MODE = {32'd1, 32'd1},
    parameter integer IN_WIDTH = 8,
    parameter integer OUT_WIDTH = ((SIMD * OUT_BITS + 7) / 8) * 8
) (
    input  wire                    ap_clk,
    input  wire                    ap_rst_n,
    input  wire [N_IN*IN_WIDTH-1:0] in_V_TDATA,
    input  wire [N_IN-1:0]         in_V_TVALID,
    output wire [N_IN-1:0]         in_V_TREADY,
    output wire [OUT_WIDTH-1:0]    out0_V_TDATA,
    output wire                    out0_V_TVALID,
    input  wire                    out0_V_TREADY
);
    function automatic integer max_folds(input [32*N_IN-1:0] f);
        integer i;
        begin
            max_folds = 1;
            for (i = 0; i < N_IN; i = i + 1)
                if (f[32*i +: 32] > max_folds) max_folds = f[32*i +: 32];
        end
    endfunction

    localparam integer MAXF = max_folds(FOLDS);
    localparam integer F_BITS = MAXF > 1 ? $clog2(MAXF) : 1;
    localparam integer S_BITS = N_IN > 1 ? $clog2(N_IN) : 1;
    localparam integer W = SIMD * OUT_BITS;

    // ---- element conversion, per input ------------------------------------------------
    wire [N_IN*W-1:0] conv;
    genvar i, s, b;
    generate
        for (i = 0; i < N_IN; i = i + 1) begin : g_in
            localparam integer IB = IN_BITS[32*i +: 32];
            localparam integer MD = MODE[32*i +: 32];
            for (s = 0; s < SIMD; s = s + 1) begin : g_elem
                wire [IB-1:0] e = in_V_TDATA[i*IN_WIDTH + s*IB +: IB];
                for (b = 0; b < OUT_BITS; b = b + 1) begin : g_bit
                    if (MD == 2) begin : g_bipolar
                        assign conv[i*W + s*OUT_BITS + b] = (b == 0) ? 1'b1 : ~e[0];
                    end else if (b < IB) begin : g_copy
                        assign conv[i*W + s*OUT_BITS + b] = e[b];
                    end else if (MD == 1) begin : g_sign
                        assign conv[i*W + s*OUT_BITS + b] = e[IB-1];
                    end else begin : g_zero
                        assign conv[i*W + s*OUT_BITS + b] = 1'b0;
                    end
                end
            end
        end
    endgenerate

    // ---- input selection ----------------------------------------------------------------
    reg  [S_BITS-1:0] sel;   // input being read
    reg  [F_BITS-1:0] fold;  // word of that input within the vector
    reg  [W-1:0]      word;
    reg               valid_sel;
    reg  [31:0]       folds_sel;
    integer k;
    always @(*) begin
        word = conv[W-1:0];
        valid_sel = in_V_TVALID[0];
        folds_sel = FOLDS[31:0];
        for (k = 1; k < N_IN; k = k + 1)
            if (sel == k) begin
                word = conv[k*W +: W];
                valid_sel = in_V_TVALID[k];
                folds_sel = FOLDS[32*k +: 32];
            end
    end

    reg               ovalid;
    reg  [W-1:0]      odata;
    wire              en = ap_rst_n && (!ovalid || out0_V_TREADY);
    wire              go = en && valid_sel;
    genvar r;
    generate
        for (r = 0; r < N_IN; r = r + 1) begin : g_ready
            assign in_V_TREADY[r] = en && (sel == r);
        end
    endgenerate

    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            sel <= 0; fold <= 0; ovalid <= 1'b0;
        end else if (en) begin
            ovalid <= valid_sel;
            if (valid_sel) begin
                odata <= word;
                if (fold == folds_sel - 1) begin
                    fold <= 0;
                    sel <= (sel == N_IN - 1) ? 0 : sel + 1'b1;
                end else begin
                    fold <= fold + 1'b1;
                end
            end
        end
    end

    assign out0_V_TVALID = ovalid;
    generate
        if (OUT_WIDTH > W) begin : g_pad
            assign out0_V_TDATA = {{(OUT_WIDTH - W){1'b0}}, odata};
        end else begin : g_nopad
            assign out0_V_TDATA = odata[OUT_WIDTH-1:0];
        end
    endgenerate
endmodule
