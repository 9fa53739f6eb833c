/**
 * @module store/statements/where — a `WHERE` clause built from optional filters, for the statement
 * builders of filtered reads. Pure.
 */
import type { SqlValue } from '../sql/client.js';

/** `WHERE` conditions and their named parameters, each added only when its value is given. */
export class Where {
  readonly conditions: string[] = [];
  readonly params: Record<string, SqlValue> = {};

  /** Starts with the conditions that always hold (e.g. the connection) and their parameters. */
  constructor(first: string, params: Record<string, SqlValue>) {
    this.conditions.push(first);
    Object.assign(this.params, params);
  }

  /** Adds `condition` (naming the parameter `name`) when `value` is defined. */
  add(condition: string, name: string, value: SqlValue | undefined): this {
    if (value !== undefined) {
      this.conditions.push(condition);
      this.params[name] = value;
    }
    return this;
  }

  /** The conditions, joined with AND. */
  get sql(): string {
    return this.conditions.join(' AND ');
  }
}
