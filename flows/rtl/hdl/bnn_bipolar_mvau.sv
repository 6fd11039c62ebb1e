// SPDX-License-Identifier: BSD-3-Clause
// bnn_bipolar_mvau: matrix-vector-activation unit with bipolar (+1/-1) weights and multi-bit
// integer activations, AXI-stream in and out. No multipliers: a weight selects +x or -x.
//
// Written for the bnn-fpga toolkit as a drop-in RTL replacement for FINN's MVAU with BIPOLAR
// weights (FINN's HLS MVAU adds/subtracts there too). Plain inferable SystemVerilog without
// vendor primitives: the same source simulates in Verilator and synthesises in Vivado or Yosys.
//
//   acc[n] = sum_k (w[k][n] ? x[k] : -x[k]) = 2 * sum_{k: w=1} x[k] - sum_k x[k]
//   out    = N_THRES == 0 ? acc : ACT_BIAS + #{t : acc >= T[n][t]}        (signed compare)
//
// Per cycle and PE the unit sums SIMD AND-gated inputs in a balanced adder tree
// (bnn_addtree); the sum of all SIMD inputs is one tree shared by the PEs.
// Folding and packing follow FINN's MVAU: an input vector arrives as SF = MW/SIMD words of SIMD
// elements of IN_BITS (element s of word f is x[f*SIMD + s], at bits s*IN_BITS, two's
// complement when IN_SIGNED); an output vector leaves as NF = MH/PE words of PE elements of
// OUT_BITS (element p of word f is channel f*PE + p, little end first; without thresholds the
// accumulator, sign-extended or truncated to OUT_BITS). The input vector is buffered on the
// first output fold and replayed for the others, so a vector takes NF*SF cycles without
// backpressure, FINN's expected cycle count for the MVAU.
//
// Memories ($readmemh, one line per word, most significant digit first):
//   WEIGHT_FILE  NF*SF lines of PE*SIMD bits, line f*SF+s: bit p*SIMD+i = (w[s*SIMD+i][f*PE+p] == +1)
//   THRES_FILE   NF lines of PE*N_THRES*ACC_BITS bits, line f: field p*N_THRES+t = T[f*PE+p][t]
//                (two's complement, pre-clipped to -MW*max|x| .. MW*max|x|+1 by the generator)
// ACC_BITS must hold every accumulator value and threshold (signed); the generator sizes it.
// Pipeline: issue (memory read) -> dot products -> accumulate and threshold -> output
// register; a full output register that the consumer does not take stalls all stages.
module bnn_bipolar_mvau #(
    parameter integer MW = 64,
    parameter integer MH = 16,
    parameter integer PE = 4,
    parameter integer SIMD = 16,
    parameter integer IN_BITS = 2,
    parameter integer IN_SIGNED = 1,
    parameter integer ACC_BITS = 12,
    parameter integer N_THRES = 0,
    parameter integer OUT_BITS = 12,
    parameter integer ACT_BIAS = 0,
    parameter integer IN_WIDTH = ((SIMD * IN_BITS + 7) / 8) * 8,
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
    localparam integer XW = SIMD * IN_BITS;
    localparam integer TW = (N_THRES > 0 ? N_THRES : 1) * ACC_BITS;
    localparam integer SW = IN_BITS + $clog2(SIMD + 1);  // width of a tree's sum
    localparam integer SF_BITS = SF > 1 ? $clog2(SF) : 1;
    localparam integer NF_BITS = NF > 1 ? $clog2(NF) : 1;
    localparam integer WA_BITS = WDEPTH > 1 ? $clog2(WDEPTH) : 1;

    // ---- memories -----------------------------------------------------------------------
    (* ram_style = RAM_STYLE *) reg [PE*SIMD-1:0] wmem [0:WDEPTH-1];
    reg [PE*TW-1:0] tmem [0:NF-1];
    reg [XW-1:0]    ibuf [0:SF-1];
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
    wire [XW-1:0]      x0 = need_input ? in0_V_TDATA[XW-1:0] : ibuf[sf];
    assign in0_V_TREADY = en && need_input;

    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            sf <= 0; nf <= 0; waddr <= 0;
        end else if (go) begin
            if (need_input) ibuf[sf] <= in0_V_TDATA[XW-1:0];
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
    reg [XW-1:0]      x1;
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

    // ---- stage 2: per PE 2*sum_{w=1} x - sum x (adder trees), registered ------------------
    wire [SW-1:0] xsum;
    bnn_addtree #(.N(SIMD), .W(IN_BITS), .SIGNED(IN_SIGNED), .OW(SW)) u_xsum (
        .terms(x1), .sum(xsum));
    wire [PE*ACC_BITS-1:0] dot;
    genvar p, i;
    generate
        for (p = 0; p < PE; p = p + 1) begin : g_dot
            wire [XW-1:0] gated;
            for (i = 0; i < SIMD; i = i + 1) begin : g_and
                assign gated[i*IN_BITS +: IN_BITS] =
                    w1[p*SIMD + i] ? x1[i*IN_BITS +: IN_BITS] : {IN_BITS{1'b0}};
            end
            wire [SW-1:0] psum;
            bnn_addtree #(.N(SIMD), .W(IN_BITS), .SIGNED(IN_SIGNED), .OW(SW)) u_psum (
                .terms(gated), .sum(psum));
            // sign- (or zero-) extend both sums to ACC_BITS; the difference wraps modulo
            // 2**ACC_BITS, exact since every partial result fits
            wire          ps_msb = IN_SIGNED ? psum[SW-1] : 1'b0;
            wire          xs_msb = IN_SIGNED ? xsum[SW-1] : 1'b0;
            wire [ACC_BITS+SW-1:0] ps_ext = {{ACC_BITS{ps_msb}}, psum};
            wire [ACC_BITS+SW-1:0] xs_ext = {{ACC_BITS{xs_msb}}, xsum};
            assign dot[p*ACC_BITS +: ACC_BITS] =
                {ps_ext[ACC_BITS-2:0], 1'b0} - xs_ext[ACC_BITS-1:0];
        end
    endgenerate

    reg                    v2, first2, last2;
    reg [PE*ACC_BITS-1:0]  dot2;
    reg [PE*TW-1:0]        t2;
    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            v2 <= 1'b0;
        end else if (en) begin
            v2 <= v1;
            if (v1) begin
                dot2 <= dot;
                t2 <= t1;
                first2 <= first1;
                last2 <= last1;
            end
        end
    end

    // ---- stage 3: accumulate, threshold ---------------------------------------------------
    reg  [PE*ACC_BITS-1:0] acc;
    reg  [OUT_WIDTH-1:0]   odata;
    reg                    ovalid;
    wire [PE*ACC_BITS-1:0] acc_next;
    wire [OUT_WIDTH-1:0]   act;
    generate
        for (p = 0; p < PE; p = p + 1) begin : g_pe
            wire [ACC_BITS-1:0] base = first2 ? {ACC_BITS{1'b0}} : acc[p*ACC_BITS +: ACC_BITS];
            wire [ACC_BITS-1:0] sum = base + dot2[p*ACC_BITS +: ACC_BITS];
            assign acc_next[p*ACC_BITS +: ACC_BITS] = sum;
            if (N_THRES == 0) begin : g_raw
                wire [OUT_BITS+ACC_BITS-1:0] ext = {{OUT_BITS{sum[ACC_BITS-1]}}, sum};
                assign act[p*OUT_BITS +: OUT_BITS] = ext[OUT_BITS-1:0];
            end else begin : g_thr
                integer t;
                reg [OUT_BITS-1:0] level;
                always @(*) begin
                    level = ACT_BIAS;
                    for (t = 0; t < N_THRES; t = t + 1)
                        level = level + ($signed(sum) >=
                                         $signed(t2[(p*N_THRES + t)*ACC_BITS +: ACC_BITS]));
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
            ovalid <= v2 && last2;
            if (v2) acc <= acc_next;
            if (v2 && last2) odata <= act;
        end
    end
    assign out0_V_TDATA = odata;
    assign out0_V_TVALID = ovalid;
endmodule

// bnn_addtree: the sum of N packed W-bit terms (two's complement when SIGNED) as OW bits
// (OW >= W + clog2(N) holds every sum), a balanced tree of adders that widen by one bit per
// level. Recursive: each half is a smaller tree. Verilator keeps the tree's modules apart
// instead of inlining thousands of instances (its C++ then compiles in seconds, not minutes).
module bnn_addtree #(
    parameter integer N = 4,
    parameter integer W = 2,
    parameter integer SIGNED = 1,
    parameter integer OW = W + $clog2(N + 1)
) (
    input  wire [N*W-1:0] terms,
    output wire [OW-1:0]  sum
);
    /* verilator no_inline_module */
    generate
        if (N == 1) begin : g_leaf
            wire msb = SIGNED ? terms[W-1] : 1'b0;
            wire [OW+W-1:0] ext = {{OW{msb}}, terms};
            assign sum = ext[OW-1:0];
        end else begin : g_node
            localparam integer NL = N / 2;
            localparam integer NR = N - NL;
            localparam integer WL = W + $clog2(NL + 1);
            localparam integer WR = W + $clog2(NR + 1);
            wire [WL-1:0] sl;
            wire [WR-1:0] sr;
            bnn_addtree #(.N(NL), .W(W), .SIGNED(SIGNED), .OW(WL)) u_l (
                .terms(terms[NL*W-1:0]), .sum(sl));
            bnn_addtree #(.N(NR), .W(W), .SIGNED(SIGNED), .OW(WR)) u_r (
                .terms(terms[N*W-1:NL*W]), .sum(sr));
            wire ml = SIGNED ? sl[WL-1] : 1'b0;
            wire mr = SIGNED ? sr[WR-1] : 1'b0;
            wire [OW+WL-1:0] el = {{OW{ml}}, sl};
            wire [OW+WR-1:0] er = {{OW{mr}}, sr};
            assign sum = el[OW-1:0] + er[OW-1:0];
        end
    endgenerate
endmodule
