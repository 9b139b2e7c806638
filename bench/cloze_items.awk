# bench/cloze_items.awk — a LAMBADA-style cloze task from held-out
# TinyStories text, for bench/73-cache-quality.sh (issue 12).
#
# Input: plain text, paragraphs separated by blank lines (awk paragraph
# mode).  A story starts at a paragraph beginning "Once upon a time" (the
# file does not mark story boundaries; other stories stay joined to the one
# before them).  Output: JSONL in dllm-score's lambada layout, one item per
# story: {"context": C, "continuation": W}, where
#   - only the story's first MAXC characters (default 500: about 250 tokens
#     of stories260K's tokenizer, so context + 64 generated tokens fit its
#     512 positions) are searched, paragraphs joined by "\n\n" as in the file;
#   - W is the LAST word in that window that is letters only, at least 3
#     long, ends a sentence (followed by . ! or ?), follows a space, and
#     occurs earlier in the story as a whole word (LAMBADA's "the target is
#     in the context" property, so a reader of the context can know it);
#   - C is the text before W, without the space before it (dllm-score puts
#     the space on the continuation's side);
#   - stories with no such word, or whose context would be shorter than 80
#     characters, give no item.
# Deterministic: no randomness; the same text gives the same file.
# Does not do: story boundaries other than "Once upon a time", Unicode
# letters (non-ASCII words are never targets), JSON escapes beyond \\ \"
# \n \t (TinyStories text has no other control characters).
BEGIN { RS = ""; if (!MAXC) MAXC = 500 }
function esc(s) {
    gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\n/, "\\n", s); gsub(/\t/, "\\t", s)
    return s
}
function isletter(c) { return c ~ /^[A-Za-z]$/ }
# 1 when word w occurs as a whole word in s before position lim
function earlier(s, w, lim,    p, off, q, a, b) {
    off = 0
    while ((p = index(substr(s, off + 1), w)) > 0) {
        q = off + p
        if (q >= lim) return 0
        a = q > 1 ? substr(s, q - 1, 1) : " "
        b = substr(s, q + length(w), 1)
        if (!isletter(a) && !isletter(b)) return 1
        off = q
    }
    return 0
}
function emit(s,    win, n, i, best, bw, st, w, c) {
    if (s == "") return
    win = substr(s, 1, MAXC)
    n = length(win)
    best = 0
    # candidates: a space, then letters, then . ! ?
    for (i = 2; i < n; i++) {
        c = substr(win, i, 1)
        if (c != "." && c != "!" && c != "?") continue
        st = i
        while (st > 1 && isletter(substr(win, st - 1, 1))) st--
        if (st == i || st < 2 || substr(win, st - 1, 1) != " ") continue
        w = substr(win, st, i - st)
        if (length(w) < 3 || st - 2 < 80 || !earlier(win, w, st - 1)) continue
        best = st; bw = w
    }
    if (best) printf "{\"context\": \"%s\", \"continuation\": \"%s\"}\n", esc(substr(win, 1, best - 2)), bw
}
{
    if ($0 ~ /^Once upon a time/) { emit(story); story = "" }
    story = story == "" ? $0 : story "\n\n" $0
}
END { emit(story) }
