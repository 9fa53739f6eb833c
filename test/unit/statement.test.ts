/** Named statement parameters (store/sql/statement.ts): what compiles to which placeholders, and what is refused. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { bind, compile } from '../../src/store/sql/statement.js';
import { DIALECTS } from '../../src/store/sql/dialect.js';
import { toPgPlaceholders } from '../../src/store/postgres/pg-client.js';

describe('named statement parameters', () => {
  it('binds each name where it stands, a repeated name each time', () => {
    const { text, values } = bind({ sql: 'SELECT * FROM t WHERE a = :now AND b < :now AND c = :id', params: { now: 5, id: 'x' } });
    assert.equal(text, 'SELECT * FROM t WHERE a = ? AND b < ? AND c = ?');
    assert.deepEqual(values, [5, 5, 'x']);
  });

  it('tells a name from a longer one that starts with it', () => {
    const { values } = bind({ sql: 'SELECT :n1, :n10, :n', params: { n: 0, n1: 1, n10: 10 } });
    assert.deepEqual(values, [1, 10, 0]);
  });

  it('leaves PostgreSQL casts, quoted literals (with doubled quotes) and quoted identifiers alone', () => {
    const { text, values } = bind({ sql: `SELECT :v::jsonb, 'it''s :not', "col:x", json_extract(x, '$.a') FROM t WHERE d = :d`, params: { v: '{}', d: 1 } });
    assert.equal(text, `SELECT ?::jsonb, 'it''s :not', "col:x", json_extract(x, '$.a') FROM t WHERE d = ?`);
    assert.deepEqual(values, ['{}', 1]);
  });

  it('refuses a parameter the text names but the builder did not give', () => {
    assert.throws(() => bind({ sql: 'SELECT :a, :b', params: { a: 1 } }), /:b has no value/);
  });

  it('binds null, never undefined', () => {
    assert.deepEqual(bind({ sql: 'SELECT :a', params: { a: null } }).values, [null]);
  });

  it('refuses positional placeholders, comments, dollar quotes and array slices', () => {
    assert.throws(() => compile('SELECT * FROM t WHERE a = ?'), /positional/);
    assert.throws(() => compile("SELECT 1 -- it's :c"), /comments/);
    assert.throws(() => compile('SELECT 1 /* :c */'), /comments/);
    assert.throws(() => compile('SELECT $$:c$$'), /dollar/);
    assert.throws(() => compile('SELECT a[1:2] FROM t'), /array slices/);
  });

  it('compiled text runs on SQLite and becomes $n text for PostgreSQL', () => {
    const db = new Database(':memory:');
    const st = { sql: `SELECT :a AS a, :b AS b, :a + :b AS sum, ${DIALECTS.sqlite.jsonIntList('ids')} AS first`, params: { a: 2, b: 3, ids: '[7, 8]' } };
    const { text, values } = bind(st);
    assert.deepEqual(db.prepare(text).get(...values), { a: 2, b: 3, sum: 5, first: 7 });
    db.close();
    assert.equal(toPgPlaceholders(bind({ sql: `SELECT ${DIALECTS.postgres.jsonTextList('ids')}, :x`, params: { ids: '[]', x: 1 } }).text), 'SELECT (SELECT jsonb_array_elements_text($1::jsonb)), $2');
  });
});
