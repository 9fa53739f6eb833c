/**
 * @module domain/metrics — a small Prometheus registry (counters and histograms with labels) that
 * every stage records into and `/metrics` renders in the text exposition format. Label values are
 * ids and codes only — never patient data.
 */

type Labels = Readonly<Record<string, string>>;

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  return keys.map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',');
}

/** A monotonically increasing count. */
export class Counter {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  /** Current value for a label set (tests). */
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [k, v] of this.values) lines.push(`${this.name}${k ? `{${k}}` : ''} ${v}`);
    return lines.join('\n');
  }
}

/** A distribution of observations in fixed buckets (seconds). */
export class Histogram {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  ) {}
  observe(value: number, labels: Labels = {}): void {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] as number)) (s.counts[i] as number)++;
    s.sum += value;
    s.count++;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, s] of this.series) {
      const sep = k ? ',' : '';
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{${k}${sep}le="${b}"} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket{${k}${sep}le="+Inf"} ${s.count}`);
      lines.push(`${this.name}_sum${k ? `{${k}}` : ''} ${s.sum}`);
      lines.push(`${this.name}_count${k ? `{${k}}` : ''} ${s.count}`);
    }
    return lines.join('\n');
  }
}

/** Every metric ehrsync exposes. One instance per process, passed to the stages that record. */
export class Metrics {
  readonly syncRuns = new Counter('ehrsync_sync_runs_total', 'Sync runs by outcome and error code.');
  readonly syncDuration = new Histogram('ehrsync_sync_duration_seconds', 'Duration of sync runs.');
  readonly eventsDetected = new Counter('ehrsync_events_total', 'Events detected and stored, by type.');
  readonly quarantined = new Counter('ehrsync_quarantined_records_total', 'EHR records set aside as malformed, by kind.');
  readonly deliveryAttempts = new Counter('ehrsync_delivery_attempts_total', 'Webhook delivery attempts by outcome.');
  readonly deliveryLatency = new Histogram('ehrsync_delivery_latency_seconds', 'Time from an attempt start to the receiver answer.');
  readonly deliveries = new Counter('ehrsync_deliveries_total', 'Deliveries reaching a final state, by status.');
  readonly httpRequests = new Counter('ehrsync_http_requests_total', 'API requests by route and status code.');
  readonly httpDuration = new Histogram('ehrsync_http_request_duration_seconds', 'API request durations.');

  /** The Prometheus text exposition of every metric. */
  render(): string {
    return (
      [
        this.syncRuns,
        this.syncDuration,
        this.eventsDetected,
        this.quarantined,
        this.deliveryAttempts,
        this.deliveryLatency,
        this.deliveries,
        this.httpRequests,
        this.httpDuration,
      ]
        .map((m) => m.render())
        .join('\n') + '\n'
    );
  }
}
