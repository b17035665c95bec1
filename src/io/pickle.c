/* The pickle machine of pickle.h: a value stack, a mark stack and a memo,
 * one opcode at a time, every read bounds-checked. */
#include "io/pickle.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Caps that keep a hostile stream from exhausting memory. */
#define MAX_OBJECTS 50000000u
#define MAX_STACK 10000000u
#define MAX_MEMO 50000000u

enum { G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_TENSOR, G_REBUILD_PARAMETER, G_STORAGE_TYPE };

static const struct {
  const char *module, *name;
  int which;
  skd_dtype dtype;
} allowed[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, SKD_DTYPE_F32},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, SKD_DTYPE_F32},
    {"torch._utils", "_rebuild_tensor", G_REBUILD_TENSOR, SKD_DTYPE_F32}, /* before PyTorch 0.4 */
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, SKD_DTYPE_F32},
    {"torch", "FloatStorage", G_STORAGE_TYPE, SKD_DTYPE_F32},
    {"torch", "HalfStorage", G_STORAGE_TYPE, SKD_DTYPE_F16},
    {"torch", "BFloat16Storage", G_STORAGE_TYPE, SKD_DTYPE_BF16},
    {"torch", "DoubleStorage", G_STORAGE_TYPE, SKD_DTYPE_F64},
    {"torch", "LongStorage", G_STORAGE_TYPE, SKD_DTYPE_I64},
    {"torch", "IntStorage", G_STORAGE_TYPE, SKD_DTYPE_I32},
    {"torch", "ByteStorage", G_STORAGE_TYPE, SKD_DTYPE_U8},
    {"torch", "BoolStorage", G_STORAGE_TYPE, SKD_DTYPE_BOOL},
};
#define NALLOWED ((int)(sizeof allowed / sizeof allowed[0]))

typedef struct machine {
  pk_heap *h;
  const unsigned char *p;
  size_t size, pos, base, op_at;
  unsigned char op;
  pk_obj **stack;
  size_t sp, scap;
  size_t *marks;
  size_t nmarks, mcap;
  pk_obj **memo;
  size_t memo_cap, memo_len; /* memo_len: entries set, MEMOIZE's next index */
} machine;

#define FAIL(m, ...) fail_at(m, __VA_ARGS__)

static skd_status fail_at(const machine *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static skd_status fail_at(const machine *m, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return skd_error(SKD_EFORMAT, "%s: pickle byte %zu, opcode 0x%02x: %s", m->h->file, m->base + m->op_at, m->op,
                   msg);
}

static pk_obj *new_obj(machine *m, pk_kind kind) {
  if (m->h->count >= MAX_OBJECTS) return NULL;
  pk_obj *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->kind = kind;
  o->next = m->h->all;
  m->h->all = o;
  m->h->count++;
  return o;
}

void pk_heap_free(pk_heap *h) {
  for (pk_obj *o = h->all, *next; o; o = next) {
    next = o->next;
    free(o->s);
    free(o->items);
    free(o->data);
    free(o);
  }
  h->all = NULL;
  h->storages = NULL;
  h->count = 0;
}

static skd_status push(machine *m, pk_obj *o) {
  if (!o) return FAIL(m, "out of memory (or over %u objects)", MAX_OBJECTS);
  if (m->sp == m->scap) {
    if (m->scap >= MAX_STACK) return FAIL(m, "the stack is over %u values", MAX_STACK);
    size_t cap = m->scap ? 2 * m->scap : 64;
    pk_obj **s = realloc(m->stack, cap * sizeof *s);
    if (!s) return FAIL(m, "out of memory");
    m->stack = s;
    m->scap = cap;
  }
  m->stack[m->sp++] = o;
  return SKD_OK;
}

static skd_status pop(machine *m, pk_obj **o) {
  size_t floor_ = m->nmarks ? m->marks[m->nmarks - 1] : 0;
  if (m->sp <= floor_) return FAIL(m, "the stack is empty%s", m->nmarks ? " above the mark" : "");
  *o = m->stack[--m->sp];
  return SKD_OK;
}

static skd_status top(machine *m, pk_obj **o) {
  size_t floor_ = m->nmarks ? m->marks[m->nmarks - 1] : 0;
  if (m->sp <= floor_) return FAIL(m, "the stack is empty%s", m->nmarks ? " above the mark" : "");
  *o = m->stack[m->sp - 1];
  return SKD_OK;
}

static skd_status append_item(machine *m, pk_obj *c, pk_obj *v) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 4;
    pk_obj **items = realloc(c->items, cap * sizeof *items);
    if (!items) return FAIL(m, "out of memory");
    c->items = items;
    c->cap = cap;
  }
  c->items[c->n++] = v;
  return SKD_OK;
}

/* Pops everything above the last mark into container c (a tuple or list). */
static skd_status pop_mark_into(machine *m, pk_obj *c, size_t *first, size_t *count) {
  if (!m->nmarks) return FAIL(m, "no mark on the stack");
  size_t k = m->marks[--m->nmarks];
  *first = k;
  *count = m->sp - k;
  if (c)
    for (size_t i = k; i < m->sp; i++) {
      skd_status st = append_item(m, c, m->stack[i]);
      if (st) return st;
    }
  return SKD_OK;
}

static skd_status need(machine *m, size_t n) {
  if (n > m->size - m->pos) return FAIL(m, "the stream ends inside the opcode's argument (%zu bytes wanted)", n);
  return SKD_OK;
}

static uint64_t le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static skd_status memo_put(machine *m, uint64_t k, pk_obj *o) {
  /* Pickles number their memo from 0 up, one put per two bytes at most: a
   * larger index would only make the memo array huge. */
  if (k >= MAX_MEMO || k > m->size)
    return FAIL(m, "memo index %" PRIu64 " is beyond what a %zu-byte pickle can have stored", k, m->size);
  if (k >= m->memo_cap) {
    size_t cap = m->memo_cap ? m->memo_cap : 64;
    while (cap <= k) cap *= 2;
    pk_obj **memo = realloc(m->memo, cap * sizeof *memo);
    if (!memo) return FAIL(m, "out of memory");
    memset(memo + m->memo_cap, 0, (cap - m->memo_cap) * sizeof *memo);
    m->memo = memo;
    m->memo_cap = cap;
  }
  if (!m->memo[k]) m->memo_len++;
  m->memo[k] = o;
  return SKD_OK;
}

static skd_status string_obj(machine *m, size_t n) {
  skd_status st = need(m, n);
  if (st) return st;
  pk_obj *o = new_obj(m, PK_STR);
  if (o && !(o->s = malloc(n + 1))) o = NULL;
  if (o) {
    memcpy(o->s, m->p + m->pos, n);
    o->s[n] = '\0';
    o->len = n;
  }
  m->pos += n;
  return push(m, o);
}

static skd_status int_obj(machine *m, int64_t v) {
  pk_obj *o = new_obj(m, PK_INT);
  if (o) o->i = v;
  return push(m, o);
}

/* GLOBAL / STACK_GLOBAL: only the allow-list resolves. */
static skd_status global_obj(machine *m, const char *module, const char *name) {
  for (int g = 0; g < NALLOWED; g++) {
    /* torch.cuda.FloatStorage and the like: the same bytes, saved from a GPU. */
    const char *mod = allowed[g].which == G_STORAGE_TYPE && !strcmp(module, "torch.cuda") ? "torch" : module;
    if (strcmp(mod, allowed[g].module) || strcmp(name, allowed[g].name)) continue;
    pk_obj *o = new_obj(m, PK_GLOBAL);
    if (o) {
      o->i = allowed[g].which;
      o->dtype = allowed[g].dtype;
    }
    return push(m, o);
  }
  return FAIL(m, "global '%.100s.%.100s' is not allowed (a state_dict holds only tensors, dicts, lists and numbers)",
              module, name);
}

static skd_status op_global(machine *m) {
  const unsigned char *s = m->p + m->pos, *end = m->p + m->size;
  const unsigned char *nl1 = memchr(s, '\n', (size_t)(end - s));
  const unsigned char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
  if (!nl2) return FAIL(m, "GLOBAL: the stream ends before 'module\\nname\\n'");
  char module[128], name[128];
  size_t a = (size_t)(nl1 - s), b = (size_t)(nl2 - nl1 - 1);
  if (a >= sizeof module || b >= sizeof name) return FAIL(m, "GLOBAL: a name over 127 characters");
  memcpy(module, s, a);
  module[a] = '\0';
  memcpy(name, nl1 + 1, b);
  name[b] = '\0';
  m->pos += a + b + 2;
  return global_obj(m, module, name);
}

static int is_int(const pk_obj *o) { return o->kind == PK_INT || o->kind == PK_BOOL; }

static int int_tuple(const pk_obj *o, int64_t *v, int *n) {
  if (o->kind != PK_TUPLE || o->n > PK_MAX_DIMS) return 0;
  for (size_t i = 0; i < o->n; i++) {
    if (!is_int(o->items[i])) return 0;
    v[i] = o->items[i]->i;
  }
  *n = (int)o->n;
  return 1;
}

/* BINPERSID: ('storage', storage type, key, location, numel[, view metadata]).
 * Storages with the same key are one object (views of a shared storage). */
static skd_status persistent_id(machine *m, pk_obj *pid) {
  if (pid->kind != PK_TUPLE || pid->n < 5 || pid->n > 6 || pid->items[0]->kind != PK_STR ||
      strcmp(pid->items[0]->s, "storage") != 0)
    return FAIL(m, "persistent id is not ('storage', type, key, location, size)");
  pk_obj *type = pid->items[1], *key = pid->items[2], *numel = pid->items[4];
  if (type->kind != PK_GLOBAL || type->i != G_STORAGE_TYPE)
    return FAIL(m, "persistent id: the storage type is not one of torch's storage classes");
  if (key->kind != PK_STR || key->len == 0 || key->len > 64)
    return FAIL(m, "persistent id: the storage key is not a string of 1 to 64 characters");
  if (!is_int(numel) || numel->i < 0) return FAIL(m, "persistent id: the storage size is not a non-negative integer");
  if (pid->n == 6 && pid->items[5]->kind != PK_NONE)
    return FAIL(m, "persistent id: storage views (legacy view metadata) are not supported");
  for (pk_obj *o = m->h->storages; o; o = o->next_storage) {
    if (strcmp(o->s, key->s) != 0) continue;
    if (o->dtype != type->dtype || o->i != numel->i)
      return FAIL(m, "persistent id: storage '%s' appears with two types or sizes", key->s);
    return push(m, o);
  }
  pk_obj *o = new_obj(m, PK_STORAGE);
  if (o && !(o->s = strdup(key->s))) o = NULL;
  if (o) {
    o->dtype = type->dtype;
    o->i = numel->i;
    o->len = key->len;
    o->next_storage = m->h->storages;
    m->h->storages = o;
  }
  return push(m, o);
}

/* REDUCE: callable(*args) for the allowed callables. */
static skd_status reduce(machine *m, pk_obj *fn, pk_obj *args) {
  if (fn->kind != PK_GLOBAL) return FAIL(m, "REDUCE: the callable is not a global");
  if (args->kind != PK_TUPLE) return FAIL(m, "REDUCE: the arguments are not a tuple");
  if (fn->i == G_ORDERED_DICT) {
    if (args->n != 0) return FAIL(m, "REDUCE: OrderedDict takes no arguments here");
    return push(m, new_obj(m, PK_DICT));
  }
  if (fn->i == G_REBUILD_PARAMETER) {
    if (args->n < 2 || args->n > 3 || args->items[0]->kind != PK_TENSOR)
      return FAIL(m, "REDUCE: _rebuild_parameter expects (tensor, requires_grad, hooks)");
    return push(m, args->items[0]);
  }
  if (fn->i == G_REBUILD_TENSOR_V2 || fn->i == G_REBUILD_TENSOR) {
    /* (storage, offset, size, stride[, requires_grad, hooks[, metadata]]) */
    size_t lo = fn->i == G_REBUILD_TENSOR ? 4 : 6, hi = fn->i == G_REBUILD_TENSOR ? 4 : 7;
    if (args->n < lo || args->n > hi || args->items[0]->kind != PK_STORAGE || !is_int(args->items[1]))
      return FAIL(m, "REDUCE: _rebuild_tensor_v2 expects (storage, offset, size, stride, requires_grad, hooks)");
    pk_obj *t = new_obj(m, PK_TENSOR);
    if (!t) return push(m, t);
    int ns = 0, nt = 0;
    if (!int_tuple(args->items[2], t->size, &ns) || !int_tuple(args->items[3], t->stride, &nt) || ns != nt)
      return FAIL(m, "REDUCE: _rebuild_tensor_v2: size and stride are not int tuples of one length (at most %d)",
                  PK_MAX_DIMS);
    t->storage = args->items[0];
    t->offset = args->items[1]->i;
    t->ndim = ns;
    t->dtype = t->storage->dtype;
    return push(m, t);
  }
  return FAIL(m, "REDUCE: a storage type is not callable");
}

static skd_status setitems(machine *m, pk_obj *d, size_t first, size_t count) {
  if (d->kind != PK_DICT) return FAIL(m, "SETITEM(S) on something that is not a dict");
  if (count % 2) return FAIL(m, "SETITEMS with an odd number of values");
  for (size_t i = 0; i < count; i++) {
    skd_status st = append_item(m, d, m->stack[first + i]);
    if (st) return st;
  }
  return SKD_OK;
}

static skd_status step(machine *m, int *stop) {
  skd_status st = SKD_OK;
  pk_obj *a = NULL, *b = NULL, *c = NULL;
  size_t first = 0, count = 0;
  m->op_at = m->pos;
  m->op = m->p[m->pos++];
  switch (m->op) {
    case 0x80: /* PROTO */
      if ((st = need(m, 1))) return st;
      if (m->p[m->pos] > 5) return FAIL(m, "protocol %d is not supported", m->p[m->pos]);
      m->pos++;
      return SKD_OK;
    case 0x95: /* FRAME: a length hint, the opcodes follow inline */
      if ((st = need(m, 8))) return st;
      m->pos += 8;
      return SKD_OK;
    case '}': return push(m, new_obj(m, PK_DICT));
    case ']': return push(m, new_obj(m, PK_LIST));
    case ')': return push(m, new_obj(m, PK_TUPLE));
    case '(': /* MARK */
      if (m->nmarks == m->mcap) {
        if (m->mcap >= MAX_STACK) return FAIL(m, "over %u marks", MAX_STACK);
        size_t cap = m->mcap ? 2 * m->mcap : 16;
        size_t *mk = realloc(m->marks, cap * sizeof *mk);
        if (!mk) return FAIL(m, "out of memory");
        m->marks = mk;
        m->mcap = cap;
      }
      m->marks[m->nmarks++] = m->sp;
      return SKD_OK;
    case 't': /* TUPLE */
      if (!(a = new_obj(m, PK_TUPLE))) return push(m, a);
      if ((st = pop_mark_into(m, a, &first, &count))) return st;
      m->sp = first;
      return push(m, a);
    case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
      int n = m->op - 0x84;
      if (!(a = new_obj(m, PK_TUPLE))) return push(m, a);
      size_t floor_ = m->nmarks ? m->marks[m->nmarks - 1] : 0;
      if (m->sp < floor_ + (size_t)n) return FAIL(m, "TUPLE%d with fewer than %d values above the mark", n, n);
      for (size_t i = m->sp - (size_t)n; i < m->sp; i++)
        if ((st = append_item(m, a, m->stack[i]))) return st;
      m->sp -= (size_t)n;
      return push(m, a);
    }
    case 'J': /* BININT */
      if ((st = need(m, 4))) return st;
      m->pos += 4;
      return int_obj(m, (int32_t)(uint32_t)le(m->p + m->pos - 4, 4));
    case 'K': /* BININT1 */
      if ((st = need(m, 1))) return st;
      return int_obj(m, m->p[m->pos++]);
    case 'M': /* BININT2 */
      if ((st = need(m, 2))) return st;
      m->pos += 2;
      return int_obj(m, (int64_t)le(m->p + m->pos - 2, 2));
    case 0x8a: { /* LONG1: n little-endian two's-complement bytes */
      if ((st = need(m, 1))) return st;
      size_t n = m->p[m->pos++];
      if ((st = need(m, n))) return st;
      const unsigned char *q = m->p + m->pos;
      m->pos += n;
      /* Wider than 8 bytes: only the legacy format's magic number, which
       * the container compares by bytes; here it becomes a placeholder. */
      if (n > 8) return int_obj(m, INT64_MIN);
      uint64_t v = n ? le(q, (int)n) : 0;
      if (n && n < 8 && (q[n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);
      return int_obj(m, (int64_t)v);
    }
    case 'G': { /* BINFLOAT, big-endian */
      if ((st = need(m, 8))) return st;
      uint64_t bits = 0;
      for (int i = 0; i < 8; i++) bits = bits << 8 | m->p[m->pos + (size_t)i];
      m->pos += 8;
      if (!(a = new_obj(m, PK_FLOAT))) return push(m, a);
      memcpy(&a->f, &bits, sizeof a->f);
      return push(m, a);
    }
    case 'X': case 'T': case 'B': /* BINUNICODE, BINSTRING, BINBYTES */
      if ((st = need(m, 4))) return st;
      m->pos += 4;
      return string_obj(m, (size_t)le(m->p + m->pos - 4, 4));
    case 0x8c: case 'U': case 'C': /* SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES */
      if ((st = need(m, 1))) return st;
      return string_obj(m, m->p[m->pos++]);
    case 'N': return push(m, new_obj(m, PK_NONE));
    case 0x88: case 0x89:
      if (!(a = new_obj(m, PK_BOOL))) return push(m, a);
      a->i = m->op == 0x88;
      return push(m, a);
    case 'q': case 'r': { /* BINPUT, LONG_BINPUT */
      int n = m->op == 'q' ? 1 : 4;
      if ((st = need(m, (size_t)n))) return st;
      uint64_t k = le(m->p + m->pos, n);
      m->pos += (size_t)n;
      if ((st = top(m, &a))) return st;
      return memo_put(m, k, a);
    }
    case 0x94: /* MEMOIZE */
      if ((st = top(m, &a))) return st;
      return memo_put(m, m->memo_len, a);
    case 'h': case 'j': { /* BINGET, LONG_BINGET */
      int n = m->op == 'h' ? 1 : 4;
      if ((st = need(m, (size_t)n))) return st;
      uint64_t k = le(m->p + m->pos, n);
      m->pos += (size_t)n;
      if (k >= m->memo_cap || !m->memo[k]) return FAIL(m, "memo entry %" PRIu64 " was never stored", k);
      return push(m, m->memo[k]);
    }
    case 'c': return op_global(m);
    case 0x93: /* STACK_GLOBAL */
      if ((st = pop(m, &b)) || (st = pop(m, &a))) return st;
      if (a->kind != PK_STR || b->kind != PK_STR) return FAIL(m, "STACK_GLOBAL: module and name are not strings");
      return global_obj(m, a->s, b->s);
    case 'R': /* REDUCE */
      if ((st = pop(m, &b)) || (st = pop(m, &a))) return st;
      return reduce(m, a, b);
    case 'b': /* BUILD: a state_dict's _metadata attribute; nothing to keep */
      if ((st = pop(m, &b)) || (st = top(m, &a))) return st;
      if (a->kind != PK_DICT && a->kind != PK_TENSOR) return FAIL(m, "BUILD on something that is not a dict");
      return SKD_OK;
    case 's': /* SETITEM */
      if ((st = pop(m, &c)) || (st = pop(m, &b)) || (st = top(m, &a))) return st;
      if (a->kind != PK_DICT) return FAIL(m, "SETITEM on something that is not a dict");
      if ((st = append_item(m, a, b))) return st;
      return append_item(m, a, c);
    case 'u': /* SETITEMS */
      if ((st = pop_mark_into(m, NULL, &first, &count))) return st;
      if (first == 0 || first <= (m->nmarks ? m->marks[m->nmarks - 1] : 0))
        return FAIL(m, "SETITEMS with no dict below the mark");
      st = setitems(m, m->stack[first - 1], first, count);
      m->sp = first;
      return st;
    case 'a': /* APPEND */
      if ((st = pop(m, &b)) || (st = top(m, &a))) return st;
      if (a->kind != PK_LIST) return FAIL(m, "APPEND on something that is not a list");
      return append_item(m, a, b);
    case 'e': /* APPENDS */
      if ((st = pop_mark_into(m, NULL, &first, &count))) return st;
      if (first == 0 || first <= (m->nmarks ? m->marks[m->nmarks - 1] : 0))
        return FAIL(m, "APPENDS with no list below the mark");
      a = m->stack[first - 1];
      if (a->kind != PK_LIST) return FAIL(m, "APPENDS on something that is not a list");
      for (size_t i = 0; i < count && !st; i++) st = append_item(m, a, m->stack[first + i]);
      m->sp = first;
      return st;
    case 'Q': /* BINPERSID */
      if ((st = pop(m, &a))) return st;
      return persistent_id(m, a);
    case '.': /* STOP */
      *stop = 1;
      return SKD_OK;
    default:
      return FAIL(m, "not an opcode of the state_dict subset");
  }
}

skd_status pk_load(pk_heap *h, const unsigned char *data, size_t size, size_t base, pk_obj **out, size_t *used) {
  machine m = {.h = h, .p = data, .size = size, .base = base};
  skd_status st = SKD_OK;
  int stop = 0;
  *out = NULL;
  while (!stop && st == SKD_OK) {
    if (m.pos >= m.size) {
      st = skd_error(SKD_EFORMAT, "%s: pickle byte %zu: the stream ends before STOP", h->file, base + m.pos);
      break;
    }
    st = step(&m, &stop);
  }
  if (st == SKD_OK && (m.sp != 1 || m.nmarks))
    st = skd_error(SKD_EFORMAT, "%s: pickle byte %zu: STOP with %zu values and %zu marks on the stack (1 and 0 "
                   "expected)", h->file, base + m.op_at, m.sp, m.nmarks);
  if (st == SKD_OK) {
    *out = m.stack[0];
    *used = m.pos;
  }
  free(m.stack);
  free(m.marks);
  free(m.memo);
  return st;
}

pk_obj *pk_dict_get(const pk_obj *dict, const char *key) {
  if (!dict || dict->kind != PK_DICT) return NULL;
  for (size_t i = 0; i + 1 < dict->n; i += 2)
    if (dict->items[i]->kind == PK_STR && strcmp(dict->items[i]->s, key) == 0) return dict->items[i + 1];
  return NULL;
}

skd_status pk_check_view(const pk_heap *h, const pk_obj *t, const char *name) {
  const pk_obj *s = t->storage;
  if (t->offset < 0)
    return skd_error(SKD_EFORMAT, "%s: tensor '%s': storage offset %" PRId64 " is negative", h->file, name,
                     t->offset);
  /* The furthest element: offset + sum (size - 1) * stride, each step checked
   * against the storage's size before it can wrap. */
  uint64_t last = (uint64_t)t->offset, limit = (uint64_t)s->i;
  int empty = 0;
  if (last >= limit) last = UINT64_MAX; /* checked below, when the view is not empty */
  for (int d = 0; d < t->ndim; d++) {
    if (t->size[d] < 0 || t->stride[d] < 0)
      return skd_error(SKD_EFORMAT, "%s: tensor '%s': size or stride of dimension %d is negative", h->file, name, d);
    if (t->size[d] == 0) empty = 1;
  }
  if (empty) return SKD_OK;
  for (int d = 0; d < t->ndim && last < limit; d++) {
    uint64_t n = (uint64_t)t->size[d] - 1, stride = (uint64_t)t->stride[d];
    if (stride && n > (limit - last) / stride) {
      last = UINT64_MAX;
      break;
    }
    last += n * stride;
  }
  if (last >= limit)
    return skd_error(SKD_EFORMAT, "%s: tensor '%s': its view (offset %" PRId64 ", sizes and strides) reaches past "
                     "the %" PRIu64 " elements of storage '%s'", h->file, name, t->offset, limit, s->s);
  return SKD_OK;
}
