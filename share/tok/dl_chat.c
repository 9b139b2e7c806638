/* share/tok/dl_chat.c — chat templates (dl_chat.h): a list of {role,
 * content} messages becomes a prompt string and a response string (dllm-tok
 * encodes each separately and records n_prompt = number of prompt ids;
 * dllm-sample --chat encodes the prompt of one user turn).
 *
 * Every template is "BOS once, then per message HEADER(role) + CONTENT + EOT
 * + SEP"; the exact strings are in TEMPLATES below and in DL_CHAT_HELP.
 * Special-token texts (<|im_start|> ...) are plain text here: they become
 * single ids only when the tokenizer has them as added tokens.
 *
 * Split rule: when the last message is from "assistant", the prompt is
 * everything up to and including that message's header and the response is
 * its content + EOT (no SEP after it).  Otherwise the prompt is the whole
 * conversation followed by the assistant header (a generation prompt) and the
 * response is empty.
 *
 * Not done: Jinja.  tokenizer_config.json's chat_template is only
 * recognised (dl_chat_checkpoint), never run; the four templates below
 * reproduce the common models' templates exactly for string contents (no
 * tools, no multi-part contents, no default system).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "dl_chat.h"

struct dl_chat {
    const char *name;
    const char *bos;                  /* once, before the first message */
    const char *head_pre, *head_post; /* header = head_pre + role + head_post */
    int capitalize;                   /* role's first letter upper-cased (plain) */
    int trim;                         /* strip whitespace around content (Jinja | trim) */
    const char *eot;                  /* after each content: end of turn */
    const char *sep;                  /* after each EOT, except after the response */
};

static const dl_chat TEMPLATES[] = {
    /* User: hi\nAssistant: hello\n */
    { "plain", "", "", ": ", 1, 0, "\n", "" },
    /* <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|> */
    { "chatml", "", "<|im_start|>", "\n", 0, 0, "<|im_end|>", "\n" },
    /* <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>... */
    { "llama3", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>\n\n", 0, 1, "<|eot_id|>", "" },
    /* LLaDA-8B-Instruct: llama3's template with its own BOS text */
    { "llada", "<|startoftext|>", "<|start_header_id|>", "<|end_header_id|>\n\n", 0, 1, "<|eot_id|>", "" },
};

const char DL_CHAT_HELP[] =
    "Chat templates (--chat-template; messages = [{role, content}, ...]):\n"
    "  plain   \"Role: CONTENT\\n\" per message (role's first letter upper-cased);\n"
    "          end of turn \"\\n\"; header \"Assistant: \"\n"
    "  chatml  \"<|im_start|>ROLE\\nCONTENT<|im_end|>\\n\" per message (Qwen);\n"
    "          end of turn \"<|im_end|>\"\n"
    "  llama3  \"<|begin_of_text|>\" then \"<|start_header_id|>ROLE<|end_header_id|>\\n\\n\"\n"
    "          + trimmed CONTENT + \"<|eot_id|>\" per message\n"
    "  llada   as llama3 with \"<|startoftext|>\" first (LLaDA-8B-Instruct)\n"
    "  auto    chatml if the tokenizer has <|im_start|>, llada if it has\n"
    "          <|start_header_id|> and <|startoftext|>, llama3 if <|start_header_id|>,\n"
    "          else plain\n"
    "  Last message from the assistant: prompt = conversation up to and including\n"
    "  its header, response = its content + end of turn (n_prompt = prompt ids).\n"
    "  Otherwise the whole conversation + assistant header is the prompt.\n";

const dl_chat *dl_chat_find(const char *name, const dl_tok *tok) {
    if (!strcmp(name, "auto")) {
        const char *pick = "plain";
        if (!tok) {}   /* only validating the name */
        else if (dl_tok_token_id(tok, "<|im_start|>") >= 0) pick = "chatml";
        else if (dl_tok_token_id(tok, "<|start_header_id|>") >= 0)
            pick = dl_tok_token_id(tok, "<|startoftext|>") >= 0 ? "llada" : "llama3";
        name = pick;
    }
    for (size_t i = 0; i < sizeof TEMPLATES / sizeof TEMPLATES[0]; i++)
        if (!strcmp(TEMPLATES[i].name, name)) return &TEMPLATES[i];
    return NULL;
}

const char *dl_chat_name(const dl_chat *c) { return c->name; }

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static int put_header(const dl_chat *c, dl_strbuf *b, const char *role, size_t n) {
    int rc = dl_strbuf_puts(b, c->head_pre);
    if (!rc && n && c->capitalize && role[0] >= 'a' && role[0] <= 'z') {
        char up = (char)(role[0] - 'a' + 'A');
        rc = dl_strbuf_append(b, &up, 1);
        role++; n--;
    }
    if (!rc) rc = dl_strbuf_append(b, role, n);
    if (!rc) rc = dl_strbuf_puts(b, c->head_post);
    return rc;
}

static int put_content(const dl_chat *c, dl_strbuf *b, const char *s, size_t n) {
    if (c->trim) {
        while (n && is_space(*s)) { s++; n--; }
        while (n && is_space(s[n - 1])) n--;
    }
    int rc = dl_strbuf_append(b, s, n);
    return rc ? rc : dl_strbuf_puts(b, c->eot);
}

int dl_chat_render(const dl_chat *c, const dl_chat_msg *m, size_t n, dl_strbuf *prompt, dl_strbuf *response,
                   char *err, size_t errlen) {
    if (n == 0) return dl_seterr(err, errlen, -DL_EXIT_DATA, "\"messages\" is empty");
    int last_is_reply = m[n - 1].role_len == 9 && !memcmp(m[n - 1].role, "assistant", 9);
    size_t n_ctx = last_is_reply ? n - 1 : n;
    int rc = dl_strbuf_puts(prompt, c->bos);
    for (size_t i = 0; !rc && i < n_ctx; i++) {
        rc = put_header(c, prompt, m[i].role, m[i].role_len);
        if (!rc) rc = put_content(c, prompt, m[i].content, m[i].content_len);
        if (!rc) rc = dl_strbuf_puts(prompt, c->sep);
    }
    if (!rc) rc = put_header(c, prompt, "assistant", 9);
    if (!rc && last_is_reply) rc = put_content(c, response, m[n - 1].content, m[n - 1].content_len);
    if (rc) return dl_seterr(err, errlen, rc, "out of memory");
    return 0;
}

int dl_chat_checkpoint(const char *tok_path, const dl_tok *tok, const dl_chat **out, char *err, size_t errlen) {
    /* the directory part: up to the last '/' of a *.json path, else the
     * whole path plus a '/' (a checkpoint directory); dn = its length */
    size_t n = strlen(tok_path);
    const char *slash = strrchr(tok_path, '/');
    size_t dn = n >= 5 && !strcmp(tok_path + n - 5, ".json") ? (slash ? (size_t)(slash - tok_path + 1) : 0) : n + 1;
    char *cpath = malloc(dn + 32);
    if (!cpath) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    memcpy(cpath, tok_path, dn > n ? n : dn);
    if (dn > n) cpath[n] = '/';   /* a directory */
    strcpy(cpath + dn, "tokenizer_config.json");
    json_error_t je;
    json_t *c = json_load_file(cpath, 0, &je);
    const char *t = c ? json_string_value(json_object_get(c, "chat_template")) : NULL;
    const char *name = !t ? NULL : strstr(t, "<|im_start|>") ? "chatml"
                     : strstr(t, "<|start_header_id|>") ? (dl_tok_token_id(tok, "<|startoftext|>") >= 0 ? "llada" : "llama3")
                     : NULL;
    int rc = 0;
    if (!c) rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: %s (no chat template)", cpath, je.text);
    else if (!t) rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s has no chat_template string", cpath);
    else if (!name)
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: chat_template is none of chatml, llada, llama3", cpath);
    else *out = dl_chat_find(name, tok);
    json_decref(c);
    free(cpath);
    return rc;
}
