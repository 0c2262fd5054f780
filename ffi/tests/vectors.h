/*
 * The known-answer vectors of the C tests: a JSON array of flat objects whose values are all
 * hex strings, read into `vectors[0..vector_count]` by `load_vectors`. Included by the test
 * programs that read such files (one translation unit each).
 */
#ifndef PP_VECTORS_H
#define PP_VECTORS_H

#include "testing.h"

#define MAX_VECTORS 8
#define MAX_FIELDS 12

typedef struct {
    char name[32];
    bytes value;
} field;

typedef struct {
    field fields[MAX_FIELDS];
    int count;
} vector;

static vector vectors[MAX_VECTORS];
static int vector_count = 0;

static inline void load_vectors(const char *path) {
    size_t len, i = 0;
    char *text = read_file(path, &len);
    vector *v = NULL;
    while (i < len) {
        char c = text[i];
        if (c == '{') {
            REQUIRE(vector_count < MAX_VECTORS);
            v = &vectors[vector_count++];
            v->count = 0;
            i++;
        } else if (c == '}') {
            v = NULL;
            i++;
        } else if (c == '"') {
            /* "name" : "hex" */
            size_t name_start = ++i, name_len, value_start;
            field *f;
            REQUIRE(v != NULL);
            while (i < len && text[i] != '"') i++;
            name_len = i - name_start;
            REQUIRE(name_len < sizeof(f->name));
            i++;
            while (i < len && strchr(" \t\r\n:", text[i]) != NULL) i++;
            REQUIRE(i < len && text[i] == '"');
            value_start = ++i;
            while (i < len && text[i] != '"') i++;
            REQUIRE(v->count < MAX_FIELDS);
            f = &v->fields[v->count++];
            memcpy(f->name, text + name_start, name_len);
            f->name[name_len] = 0;
            f->value = from_hex(text + value_start, i - value_start);
            i++;
        } else {
            i++;
        }
    }
    free(text);
}

static inline const bytes *get(const vector *v, const char *name) {
    int i;
    for (i = 0; i < v->count; i++) {
        if (strcmp(v->fields[i].name, name) == 0) return &v->fields[i].value;
    }
    fprintf(stderr, "vector has no field %s\n", name);
    exit(2);
}

static inline void free_vectors(void) {
    int i, j;
    for (i = 0; i < vector_count; i++) {
        for (j = 0; j < vectors[i].count; j++) bytes_free(&vectors[i].fields[j].value);
    }
}

#endif
