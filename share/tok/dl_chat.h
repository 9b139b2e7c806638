/* dl_chat.h — chat templates: a list of {role, content} messages becomes a
 * prompt string and a response string, which the caller encodes (dllm-tok
 * for "messages" records, dllm-sample --chat for -p prompts).
 *
 * Templates ("plain", "chatml", "llama3", "llada", or "auto"): the exact
 * strings are in dl_chat.c and DL_CHAT_HELP.  Special-token texts
 * (<|im_start|> ...) are plain text here: they become single ids only when
 * the tokenizer has them as added tokens.
 *
 * A checkpoint's own template (tokenizer_config.json "chat_template", a
 * Jinja string) is recognised, not run: dl_chat_checkpoint names the
 * template it matches by its special tokens (see there).
 *
 * Ownership: templates are static (never freed); render appends to the
 * caller's buffers.  Does not: run Jinja, tools, multi-part contents, or a
 * template's default system message (Qwen2-style chatml templates add one
 * when the conversation has none; ours never do).
 */
#ifndef DL_CHAT_H
#define DL_CHAT_H
#include <stddef.h>
#include "dl_base.h"
#include "dl_tok.h"

typedef struct {
    const char *role; size_t role_len;
    const char *content; size_t content_len;
} dl_chat_msg;

typedef struct dl_chat dl_chat;

/* "plain", "chatml", "llama3", "llada"; "auto" picks by the tokenizer's
 * special tokens (<|im_start|> -> chatml, <|start_header_id|> with
 * <|startoftext|> -> llada, <|start_header_id|> -> llama3, else plain).
 * tok may be NULL to validate a name.  NULL when the name is unknown. */
const dl_chat *dl_chat_find(const char *name, const dl_tok *tok);
const char *dl_chat_name(const dl_chat *c);

/* The template of the checkpoint whose tokenizer.json is tok_path (or the
 * directory holding it): tokenizer_config.json's "chat_template" string,
 * recognised as chatml when it holds <|im_start|>, as llada (tokenizer with
 * <|startoftext|>) or llama3 when it holds <|start_header_id|>.  No file,
 * no template or another template: -DL_EXIT_DATA with a message naming the
 * file (callers then ask for --chat-template NAME). */
int dl_chat_checkpoint(const char *tok_path, const dl_tok *tok, const dl_chat **out, char *err, size_t errlen);

/* Render messages.  Last message from "assistant": prompt = everything up to
 * and including that turn's header, response = its content + end of turn.
 * Otherwise prompt = the whole conversation + the assistant header (a
 * generation prompt), response empty.  Zero messages is a data error. */
int dl_chat_render(const dl_chat *c, const dl_chat_msg *m, size_t n, dl_strbuf *prompt, dl_strbuf *response,
                   char *err, size_t errlen);

/* Multi-line description of every template, for --help. */
extern const char DL_CHAT_HELP[];

#endif
