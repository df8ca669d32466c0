/* SPDX-License-Identifier: MIT */
/*
 * regfile.c: the reader of Windows `reg export` files (regfile.h), so that the
 * GuestCommunicationServices registrations of a real Hyper-V host (reference
 * 2.2) can be imported into the emulated one.
 *
 * The file is untrusted input. It is first decoded into one NUL-terminated
 * UTF-8 buffer that holds no NUL of its own (UTF-16LE is converted, UTF-8 is
 * validated), so the line parser can work on C strings in place. Every value
 * is parsed for its syntax, whatever key it sits under, so that a hex value
 * continued over several lines never has its continuation lines read as keys
 * or values; only ElementName under a service key is kept.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hvsim/hvsim.h"
#include "hvproto/util.h"
#include "hvproto/regfile.h"

#define HEADER_V5 "Windows Registry Editor Version 5.00"
#define HEADER_V4 "REGEDIT4"
#define GCS_PATH "SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Virtualization\\GuestCommunicationServices"
#define SNIPPET_MAX 24 /* bytes of input quoted in an error message */

enum key_kind { KEY_NONE, KEY_SKIP, KEY_SERVICE };

struct ctx {
    char *err;
    size_t errlen;
    hvsim_regfile_t *out;
    size_t cap; /* allocated entries of out->v */
    char *pos, *end; /* the unread part of the decoded text */
    unsigned long line; /* number of the line last returned by next_line */
    enum key_kind key;
    size_t svc; /* index into out->v when key == KEY_SERVICE */
};


/*
 * Quote the start of s for a "got ..." message: at most SNIPPET_MAX bytes, never
 * cutting a UTF-8 sequence (the message may be shown to a user as is), with
 * control characters written as \xNN so the message stays on one line.
 */
static const char *snippet(const char *s, char *buf, size_t len)
{
    size_t i = 0, w = 0;

    if (*s == '\0')
        return "end of line";
    buf[w++] = '\'';
    while (s[i] != '\0' && (i < SNIPPET_MAX || ((unsigned char)s[i] & 0xC0) == 0x80) && w + 8 < len) {
        unsigned char ch = (unsigned char)s[i++];

        if (ch < 0x20 || ch == 0x7F)
            w += (size_t)snprintf(buf + w, len - w, "\\x%02x", ch);
        else
            buf[w++] = (char)ch;
    }
    if (s[i] != '\0') {
        memcpy(buf + w, "...", 3);
        w += 3;
    }
    buf[w++] = '\'';
    buf[w] = '\0';
    return buf;
}

/* ---- Decoding into UTF-8 ------------------------------------------------------------ */

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int decode_utf16le(const uint8_t *p, size_t n, char **out, char *err, size_t errlen)
{
    unsigned long line = 1;
    size_t i, w = 0;
    char *o;

    if (n % 2 != 0) {
        hvsim__set_err(err, errlen, "file: expected UTF-16LE text (an even number of bytes after the byte order mark), "
                "got an odd length of %zu bytes", n);
        return -EINVAL;
    }
    /* A code unit becomes at most 3 bytes (a surrogate pair, 2 units, becomes 4). */
    if (n / 2 > (SIZE_MAX - 1) / 3)
        return -ENOMEM;
    o = malloc(n / 2 * 3 + 1);
    if (o == NULL)
        return -ENOMEM;
    for (i = 0; i < n; i += 2) {
        uint32_t u = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8;

        if (u == 0) {
            hvsim__set_err(err, errlen, "line %lu: expected text, got a NUL character (U+0000)", line);
            goto bad;
        }
        if (u >= 0xDC00 && u <= 0xDFFF) {
            hvsim__set_err(err, errlen, "line %lu: expected UTF-16LE text, got a lone low surrogate U+%04X", line, u);
            goto bad;
        }
        if (u >= 0xD800 && u <= 0xDBFF) {
            uint32_t lo = i + 3 < n ? ((uint32_t)p[i + 2] | (uint32_t)p[i + 3] << 8) : 0;

            if (lo < 0xDC00 || lo > 0xDFFF) {
                hvsim__set_err(err, errlen, "line %lu: expected UTF-16LE text, got a lone high surrogate U+%04X", line, u);
                goto bad;
            }
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            i += 2;
        }
        if (u == '\n')
            line++;
        w += put_utf8(o + w, u);
    }
    o[w] = '\0';
    *out = o;
    return 0;
bad:
    free(o);
    return -EINVAL;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF. */
static int check_utf8(const uint8_t *p, size_t n, char *err, size_t errlen)
{
    unsigned long line = 1;
    size_t i = 0;

    while (i < n) {
        uint8_t c = p[i];
        size_t k, need;
        uint8_t lo = 0x80, hi = 0xBF; /* range of the first continuation byte */

        if (c == 0) {
            hvsim__set_err(err, errlen, "line %lu: expected UTF-8 text, got a NUL byte at offset %zu "
                    "(UTF-16 without a byte order mark?)", line, i);
            return -EINVAL;
        }
        if (c < 0x80) {
            if (c == '\n')
                line++;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            goto bad;
        }
        if (n - i - 1 < need)
            goto bad;
        for (k = 1; k <= need; k++) {
            uint8_t cc = p[i + k];

            if (k == 1 ? (cc < lo || cc > hi) : (cc & 0xC0) != 0x80)
                goto bad;
        }
        i += need + 1;
    }
    return 0;
bad:
    hvsim__set_err(err, errlen, "line %lu: expected UTF-8 text, got an invalid byte 0x%02x at offset %zu", line, p[i], i);
    return -EINVAL;
}

static int decode(const uint8_t *data, size_t len, char **text, size_t *tlen, char *err, size_t errlen)
{
    int r;

    if (len >= 4 && data[0] == 0xFF && data[1] == 0xFE && data[2] == 0 && data[3] == 0) {
        hvsim__set_err(err, errlen, "file: expected UTF-16LE or UTF-8, got a UTF-32LE byte order mark");
        return -EINVAL;
    }
    if (len >= 2 && data[0] == 0xFE && data[1] == 0xFF) {
        hvsim__set_err(err, errlen, "file: expected UTF-16LE or UTF-8, got a UTF-16BE byte order mark");
        return -EINVAL;
    }
    if (len >= 2 && data[0] == 0xFF && data[1] == 0xFE) {
        r = decode_utf16le(data + 2, len - 2, text, err, errlen);
        if (r == 0)
            *tlen = strlen(*text);
        return r;
    }
    if (len >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF) {
        data += 3;
        len -= 3;
    }
    r = check_utf8(data, len, err, errlen);
    if (r < 0)
        return r;
    *text = malloc(len + 1);
    if (*text == NULL)
        return -ENOMEM;
    memcpy(*text, data, len);
    (*text)[len] = '\0';
    *tlen = len;
    return 0;
}

/* ---- Lines ------------------------------------------------------------------------ */

/* The next line, NUL-terminated in place and without its CR LF, or NULL at the end. */
static char *next_line(struct ctx *c)
{
    char *s = c->pos, *nl;
    size_t n;

    if (s >= c->end)
        return NULL;
    nl = memchr(s, '\n', (size_t)(c->end - s));
    if (nl != NULL) {
        *nl = '\0';
        c->pos = nl + 1;
    } else {
        c->pos = c->end;
    }
    c->line++;
    n = strlen(s);
    if (n > 0 && s[n - 1] == '\r')
        s[n - 1] = '\0';
    return s;
}

static char *skip_ws(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static int expect(struct ctx *c, const char *what, const char *got)
{
    char buf[SNIPPET_MAX * 4 + 16];

    hvsim__set_err(c->err, c->errlen, "line %lu: expected %s, got %s", c->line, what, snippet(got, buf, sizeof(buf)));
    return -EINVAL;
}

/* After a complete value or key only blanks and a comment may follow. */
static int expect_eol(struct ctx *c, char *s, const char *after)
{
    char what[64];

    s = skip_ws(s);
    if (*s == '\0' || *s == ';')
        return 0;
    snprintf(what, sizeof(what), "end of line after %s", after);
    return expect(c, what, s);
}

static int is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/*
 * A quoted string at *sp (pointing at the opening quote), unescaped in place.
 * Unescaping only shrinks the text, so writing behind the read position is safe.
 */
static int parse_string(struct ctx *c, char **sp, char **val, size_t *vlen)
{
    char *r = *sp + 1, *w = r, *start = r;

    for (;;) {
        if (*r == '\0')
            return expect(c, "a closing '\"'", r);
        if (*r == '"')
            break;
        if (*r == '\\') {
            if (r[1] != '\\' && r[1] != '"')
                return expect(c, "'\\\\' or '\\\"' after a backslash in a string", r);
            r++;
        }
        *w++ = *r++;
    }
    *w = '\0';
    *val = start;
    *vlen = (size_t)(w - start);
    *sp = r + 1;
    return 0;
}

/* hex:.. and hex(N):.. data: comma-separated bytes, a trailing '\' continues the line. */
static int parse_hex_bytes(struct ctx *c, char *s)
{
    for (;;) {
        s = skip_ws(s);
        if (*s == '\\') {
            char *rest = skip_ws(s + 1);

            if (*rest != '\0')
                return expect(c, "end of line after the continuation '\\'", rest);
            s = next_line(c);
            if (s == NULL) {
                hvsim__set_err(c->err, c->errlen, "line %lu: expected a continuation line of hex bytes, got end of file",
                        c->line);
                return -EINVAL;
            }
            continue;
        }
        if (*s == '\0' || *s == ';')
            return 0;
        if (!is_hex(s[0]))
            return expect(c, "a hex byte", s);
        s += is_hex(s[1]) ? 2 : 1;
        s = skip_ws(s);
        if (*s == ',')
            s++;
        else if (*s != '\0' && *s != ';' && *s != '\\')
            return expect(c, "',' between hex bytes", s);
    }
}

/* ---- Keys and values ------------------------------------------------------------- */

static int add_service(struct ctx *c, const GUID *id)
{
    hvsim_regfile_t *o = c->out;
    size_t i;

    /* A key given twice is one key to regedit: the later values merge into it. */
    for (i = 0; i < o->n; i++) {
        if (hvsim_guid_equal(&o->v[i].id, id)) {
            c->svc = i;
            return 0;
        }
    }
    if (o->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 8;
        hvsim_service_info_t *nv;

        if (ncap > SIZE_MAX / sizeof(*nv))
            return -ENOMEM;
        nv = realloc(o->v, ncap * sizeof(*nv));
        if (nv == NULL)
            return -ENOMEM;
        o->v = nv;
        c->cap = ncap;
    }
    memset(&o->v[o->n], 0, sizeof(o->v[o->n]));
    o->v[o->n].id = *id;
    c->svc = o->n++;
    return 0;
}

/* Case-insensitive prefix match; returns the rest of s or NULL. */
static char *strip_prefix(char *s, const char *prefix)
{
    size_t n = strlen(prefix);

    return strncasecmp(s, prefix, n) == 0 ? s + n : NULL;
}

static int parse_key(struct ctx *c, char *s)
{
    char *close = strrchr(s, ']'), *path, *rest;
    GUID id;
    int r;

    if (close == NULL)
        return expect(c, "a key name closed by ']'", s);
    r = expect_eol(c, close + 1, "the key name");
    if (r < 0)
        return r;
    *close = '\0';
    path = s + 1;
    c->key = KEY_SKIP;
    if (*path == '-') /* a delete-key entry: nothing to import */
        return 0;
    rest = strip_prefix(path, "HKEY_LOCAL_MACHINE\\");
    if (rest == NULL)
        rest = strip_prefix(path, "HKLM\\");
    if (rest == NULL)
        return 0;
    rest = strip_prefix(rest, GCS_PATH);
    if (rest == NULL || *rest != '\\')
        return 0; /* unrelated, or the GuestCommunicationServices key itself */
    rest++;
    if (strchr(rest, '\\') != NULL)
        return 0; /* a subkey of a service: not part of the registration */
    if (hvsim_guid_parse(rest, &id) < 0)
        return expect(c, "a service GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) as the key name", rest);
    r = add_service(c, &id);
    if (r < 0)
        return r;
    c->key = KEY_SERVICE;
    return 0;
}

static int set_element_name(struct ctx *c, const char *val, size_t vlen)
{
    const unsigned char *u = (const unsigned char *)val;
    size_t i;

    if (vlen > HVSIM_ELEMENT_NAME_MAX - 1) {
        hvsim__set_err(c->err, c->errlen, "line %lu: expected an ElementName of at most %d bytes (UTF-8), got %zu bytes",
                c->line, HVSIM_ELEMENT_NAME_MAX - 1, vlen);
        return -EINVAL;
    }
    for (i = 0; i < vlen; i++) {
        /* C0 controls, DEL and the C1 controls U+0080..U+009F (C2 80..C2 9F in UTF-8). */
        if (u[i] < 0x20 || u[i] == 0x7F || (u[i] == 0xC2 && i + 1 < vlen && u[i + 1] <= 0x9F)) {
            hvsim__set_err(c->err, c->errlen, "line %lu: expected an ElementName without control characters, "
                    "got one at byte %zu", c->line, i);
            return -EINVAL;
        }
    }
    memcpy(c->out->v[c->svc].element_name, val, vlen);
    c->out->v[c->svc].element_name[vlen] = '\0';
    return 0;
}

static int parse_value(struct ctx *c, char *s)
{
    char *name = NULL, *val = NULL, *type;
    size_t nlen = 0, vlen = 0;
    int keep, r;

    if (c->key == KEY_NONE)
        return expect(c, "a key ('[...]') before the first value", s);
    if (*s == '@') {
        s++;
    } else {
        r = parse_string(c, &s, &name, &nlen);
        if (r < 0)
            return r;
    }
    keep = c->key == KEY_SERVICE && name != NULL && strcasecmp(name, "ElementName") == 0;
    s = skip_ws(s);
    if (*s != '=')
        return expect(c, "'=' after the value name", s);
    s = skip_ws(s + 1);
    type = s;
    if (*s == '"') {
        r = parse_string(c, &s, &val, &vlen);
        if (r < 0)
            return r;
        r = expect_eol(c, s, "the string");
        if (r < 0)
            return r;
        return keep ? set_element_name(c, val, vlen) : 0;
    }
    if (*s == '-') {
        r = expect_eol(c, s + 1, "'-'");
        if (r < 0)
            return r;
        /* regedit deletes the value; the key stays, so its name goes back to "". */
        if (keep)
            c->out->v[c->svc].element_name[0] = '\0';
        return 0;
    }
    if (strncasecmp(s, "dword:", 6) == 0) {
        size_t k = 0;

        s += 6;
        while (k < 8 && is_hex(s[k]))
            k++;
        if (k == 0 || is_hex(s[k]))
            return expect(c, "1 to 8 hex digits after 'dword:'", s);
        if (keep)
            goto not_string;
        return expect_eol(c, s + k, "the dword");
    }
    if (strncasecmp(s, "hex:", 4) == 0) {
        s += 4;
    } else if (strncasecmp(s, "hex(", 4) == 0) {
        size_t k = 0;

        s += 4;
        while (k < 8 && is_hex(s[k]))
            k++;
        if (k == 0 || s[k] != ')' || s[k + 1] != ':')
            return expect(c, "a hex type number and '):' after 'hex('", s);
        s += k + 2;
    } else {
        return expect(c, "a value (\"string\", dword:, hex:, hex(N): or -)", s);
    }
    if (keep)
        goto not_string;
    return parse_hex_bytes(c, s);
not_string:
    /* Name just the type ("dword:", "hex(2):"); type always holds a ':' here. */
    strchr(type, ':')[1] = '\0';
    return expect(c, "ElementName to be a string (REG_SZ)", type);
}

static int is_blank(char *s)
{
    return *skip_ws(s) == '\0';
}

static int parse_text(struct ctx *c)
{
    char *s;
    size_t n;
    int r;

    while ((s = next_line(c)) != NULL && is_blank(s))
        ;
    if (s == NULL) {
        hvsim__set_err(c->err, c->errlen, "line %lu: expected '" HEADER_V5 "' or '" HEADER_V4 "', got end of file",
                c->line ? c->line : 1);
        return -EINVAL;
    }
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (!((n == strlen(HEADER_V5) && memcmp(s, HEADER_V5, n) == 0) ||
          (n == strlen(HEADER_V4) && memcmp(s, HEADER_V4, n) == 0)))
        return expect(c, "'" HEADER_V5 "' or '" HEADER_V4 "'", s);
    while ((s = next_line(c)) != NULL) {
        s = skip_ws(s);
        if (*s == '\0' || *s == ';')
            continue;
        if (*s == '[')
            r = parse_key(c, s);
        else if (*s == '"' || *s == '@')
            r = parse_value(c, s);
        else
            r = expect(c, "a key '[...]', a value or a comment", s);
        if (r < 0)
            return r;
    }
    return 0;
}

int hvsim__regfile_parse(const uint8_t *data, size_t len, hvsim_regfile_t *out, char *err, size_t errlen)
{
    struct ctx c;
    char *text = NULL;
    size_t tlen = 0;
    int r;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL || (data == NULL && len > 0))
        return -EINVAL;
    out->v = NULL;
    out->n = 0;
    r = decode(data != NULL ? data : (const uint8_t *)"", len, &text, &tlen, err, errlen);
    if (r < 0) {
        if (r == -ENOMEM)
            hvsim__set_err(err, errlen, "out of memory decoding %zu bytes", len);
        return r;
    }
    memset(&c, 0, sizeof(c));
    c.err = err;
    c.errlen = errlen;
    c.out = out;
    c.pos = text;
    c.end = text + tlen;
    c.key = KEY_NONE;
    r = parse_text(&c);
    free(text);
    if (r < 0) {
        if (r == -ENOMEM)
            hvsim__set_err(err, errlen, "line %lu: out of memory", c.line);
        hvsim__regfile_free(out);
    }
    return r;
}

void hvsim__regfile_free(hvsim_regfile_t *r)
{
    if (r == NULL)
        return;
    free(r->v);
    r->v = NULL;
    r->n = 0;
}
