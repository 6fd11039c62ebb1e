// SPDX-License-Identifier: BSD-3-Clause
// bnn_xnor_mvau: binary (XNOR-popcount) matrix-vector-activation unit, AXI-stream in and out.
//
// Written for the bnn-fpga toolkit as a drop-in RTL replacement for FINN's MVAU in
// binaryXnorMode. Plain inferable SystemVerilog without vendor primitives, so that the same
// source simulates in Verilator and synthesises in Vivado or Yosys.
//
//   y[n] = sum_k XNOR(x[k], w[k][n])                       (popcount, 0 .. MW)
//   out  = N_THRES == 0 ? y : ACT_BIAS + #{t : y >= T[n][t]}
//
// Folding and packing follow FINN's MVAU: an input vector arrives as SF = MW/SIMD words of SIMD
// bits (element s of word f is x[f*SIMD + s], bit s); an output vector leaves as NF = MH/PE
// words of PE elements of OUT_BITS (element p of word f is channel f*PE + p, little end first).
// The input vector is buffered on the first output fold and replayed for the others, so a
// vector takes NF*SF cycles without backpressure, FINN's expected cycle count for the MVAU.
//
// Memories ($readmemh, one line per word, most significant digit first):
//   WEIGHT_FILE  NF*SF lines of PE*SIMD bits, line f*SF+s: bit p*SIMD+i = w[s*SIMD+i][f*PE+p]
//   THRES_FILE   NF lines of PE*N_THRES*T_BITS bits, line f: field p*N_THRES+t = T[f*PE+p][t]
//                (unsigned, pre-clipped to 0 .. MW+1 by the generator)
// Pipeline: issue (memory read) -> accumulate -> output register; a full output register that
// the consumer does not take stalls all stages.
module bnn_xnor_mvau #(
    parameter integer MW = 64,
    parameter integer MH = 16,
    parameter integer PE = 4,
    parameter integer SIMD = 16,
    parameter integer N_THRES = 0,
    parameter integer OUT_BITS = 8,
    parameter integer ACT_BIAS = 0,
    parameter integer IN_WIDTH = ((SIMD + 7) / 8) * 8,
    parameter integer OUT_WIDTH = ((PE * OUT_BITS + 7) / 8) * 8,
    parameter WEIGHT_FILE = "",
    parameter THRES_FILE = "",
    parameter RAM_STYLE = "auto"
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
    localparam integer SF = MW / SIMD;
    localparam integer NF = MH / PE;
    localparam integer WDEPTH = NF * SF;
    localparam integer CNT_BITS = $clog2(MW + 2);  // popcount 0..MW and the clip value MW+1
    localparam integer T_BITS = CNT_BITS;
    localparam integer TW = (N_THRES > 0 ? N_THRES : 1) * T_BITS;
    localparam integer SF_BITS = SF > 1 ? $clog2(SF) : 1;
    localparam integer NF_BITS = NF > 1 ? $clog2(NF) : 1;
    localparam integer WA_BITS = WDEPTH > 1 ? $clog2(WDEPTH) : 1;

    // ---- memories -----------------------------------------------------------------------
    (* ram_style = RAM_STYLE *) reg [PE*SIMD-1:0] wmem [0:WDEPTH-1];
    reg [PE*TW-1:0] tmem [0:NF-1];
    reg [SIMD-1:0]  ibuf [0:SF-1];
    initial begin
        if (WEIGHT_FILE != "") $readmemh(WEIGHT_FILE, wmem);
        if (N_THRES > 0 && THRES_FILE != "") $readmemh(THRES_FILE, tmem);
    end

    // ---- stage 0: issue -----------------------------------------------------------------
    reg  [SF_BITS-1:0] sf;
    reg  [NF_BITS-1:0] nf;
    reg  [WA_BITS-1:0] waddr;
    wire               en;           // the whole pipeline advances
    wire               need_input = (nf == 0);
    wire               issue = need_input ? in0_V_TVALID : 1'b1;
    wire               go = en && issue;
    wire [SIMD-1:0]    x0 = need_input ? in0_V_TDATA[SIMD-1:0] : ibuf[sf];
    assign in0_V_TREADY = en && need_input;

    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            sf <= 0; nf <= 0; waddr <= 0;
        end else if (go) begin
            if (need_input) ibuf[sf] <= in0_V_TDATA[SIMD-1:0];
            waddr <= (waddr == WDEPTH - 1) ? 0 : waddr + 1'b1;
            if (sf == SF - 1) begin
                sf <= 0;
                nf <= (nf == NF - 1) ? 0 : nf + 1'b1;
            end else begin
                sf <= sf + 1'b1;
            end
        end
    end

    // ---- stage 1: registered memory read ------------------------------------------------
    reg               v1, first1, last1;
    reg [SIMD-1:0]    x1;
    reg [PE*SIMD-1:0] w1;
    reg [PE*TW-1:0]   t1;
    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            v1 <= 1'b0;
        end else if (en) begin
            v1 <= issue;
            if (issue) begin
                x1 <= x0;
                w1 <= wmem[waddr];
                t1 <= tmem[nf];
                first1 <= (sf == 0);
                last1 <= (sf == SF - 1);
            end
        end
    end

    // ---- stage 2: XNOR-popcount, accumulate, threshold -----------------------------------
    function automatic [CNT_BITS-1:0] popcount(input [SIMD-1:0] bits);
        integer i;
        begin
            popcount = 0;
            for (i = 0; i < SIMD; i = i + 1) popcount = popcount + bits[i];
        end
    endfunction

    reg  [PE*CNT_BITS-1:0] acc;
    reg  [OUT_WIDTH-1:0]   odata;
    reg                    ovalid;
    wire [PE*CNT_BITS-1:0] acc_next;
    wire [OUT_WIDTH-1:0]   act;
    genvar p;
    generate
        for (p = 0; p < PE; p = p + 1) begin : g_pe
            wire [CNT_BITS-1:0] base = first1 ? {CNT_BITS{1'b0}} : acc[p*CNT_BITS +: CNT_BITS];
            wire [CNT_BITS-1:0] sum = base + popcount(~(x1 ^ w1[p*SIMD +: SIMD]));
            assign acc_next[p*CNT_BITS +: CNT_BITS] = sum;
            if (N_THRES == 0) begin : g_raw
                assign act[p*OUT_BITS +: OUT_BITS] = sum;
            end else begin : g_thr
                integer t;
                reg [OUT_BITS-1:0] level;
                always @(*) begin
                    level = ACT_BIAS;
                    for (t = 0; t < N_THRES; t = t + 1)
                        level = level + (sum >= t1[(p*N_THRES + t)*T_BITS +: T_BITS]);
                end
                assign act[p*OUT_BITS +: OUT_BITS] = level;
            end
        end
        if (OUT_WIDTH > PE * OUT_BITS) begin : g_pad
            assign act[OUT_WIDTH-1:PE*OUT_BITS] = 0;
        end
    endgenerate

    assign en = !ovalid || out0_V_TREADY;
    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            ovalid <= 1'b0;
        end else if (en) begin
            ovalid <= v1 && last1;
            if (v1) acc <= acc_next;
            if (v1 && last1) odata <= act;
        end
    end
    assign out0_V_TDATA = odata;
    assign out0_V_TVALID = ovalid;
endmodule
