/**
 * A small Prometheus registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format (version 0.0.4) that /metrics serves.
 * Modules register their metrics with etcd's names (etcd_disk_wal_fsync_duration_seconds,
 * etcd_server_has_leader, ...) on a Registry passed in, never on a global, so
 * that several members can live in one test process.
 */
import { assert } from './assert.js';

export type Labels = Readonly<Record<string, string>>;

function labelKey(names: readonly string[], labels: Labels | undefined): string {
  if (names.length === 0) return '';
  assert(labels !== undefined, 'labels required');
  return names.map((n) => {
    const v = labels[n];
    assert(v !== undefined, `missing label ${n}`);
    return v;
  }).join('\u0000');
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function renderLabels(names: readonly string[], key: string, extra?: string): string {
  const values = key === '' ? [] : key.split('\u0000');
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i] ?? '')}"`);
  if (extra !== undefined) parts.push(extra);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

interface Metric {
  readonly name: string;
  readonly help: string;
  render(out: string[]): void;
}

abstract class Vector implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    assert(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name), `bad metric name ${name}`);
  }

  abstract render(out: string[]): void;
}

export class Counter extends Vector {
  private readonly values = new Map<string, number>();
  private collect: (() => number) | undefined;

  /** Reads the (monotonic) value at scrape time, e.g. from the process (an unlabelled counter only). */
  collectWith(fn: () => number): this {
    assert(this.labelNames.length === 0, 'collectWith is for unlabelled counters');
    this.collect = fn;
    return this;
  }

  inc(labels?: Labels, by = 1): void {
    assert(by >= 0, 'counters only go up');
    const k = labelKey(this.labelNames, labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }

  get(labels?: Labels): number {
    return this.values.get(labelKey(this.labelNames, labels)) ?? 0;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    if (this.collect !== undefined) {
      out.push(`${this.name} ${formatValue(this.collect())}`);
      return;
    }
    if (this.labelNames.length === 0 && this.values.size === 0) out.push(`${this.name} 0`);
    for (const [k, v] of this.values) out.push(`${this.name}${renderLabels(this.labelNames, k)} ${formatValue(v)}`);
  }
}

export class Gauge extends Vector {
  private readonly values = new Map<string, number>();
  private collect: (() => number) | undefined;

  set(value: number, labels?: Labels): void {
    this.values.set(labelKey(this.labelNames, labels), value);
  }

  inc(labels?: Labels, by = 1): void {
    const k = labelKey(this.labelNames, labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }

  dec(labels?: Labels, by = 1): void {
    this.inc(labels, -by);
  }

  get(labels?: Labels): number {
    return this.values.get(labelKey(this.labelNames, labels)) ?? 0;
  }

  /** Reads the value at scrape time (an unlabelled gauge only). */
  collectWith(fn: () => number): this {
    assert(this.labelNames.length === 0, 'collectWith is for unlabelled gauges');
    this.collect = fn;
    return this;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`);
    if (this.collect !== undefined) {
      out.push(`${this.name} ${formatValue(this.collect())}`);
      return;
    }
    if (this.labelNames.length === 0 && this.values.size === 0) out.push(`${this.name} 0`);
    for (const [k, v] of this.values) out.push(`${this.name}${renderLabels(this.labelNames, k)} ${formatValue(v)}`);
  }
}

interface HistogramSeries {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Vector {
  private readonly series = new Map<string, HistogramSeries>();

  constructor(name: string, help: string, labelNames: readonly string[], readonly buckets: readonly number[]) {
    super(name, help, labelNames);
    for (let i = 1; i < buckets.length; i++) assert((buckets[i] as number) > (buckets[i - 1] as number), 'buckets must increase');
  }

  observe(value: number, labels?: Labels): void {
    const k = labelKey(this.labelNames, labels);
    let s = this.series.get(k);
    if (s === undefined) {
      s = { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= (this.buckets[i] as number)) {
        s.counts[i] = (s.counts[i] as number) + 1;
        break;
      }
    }
    s.sum += value;
    s.count++;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    const empty: HistogramSeries = { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
    const all = this.labelNames.length === 0 && this.series.size === 0 ? new Map([['', empty]]) : this.series;
    for (const [k, s] of all) {
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += s.counts[i] as number;
        out.push(`${this.name}_bucket${renderLabels(this.labelNames, k, `le="${formatValue(this.buckets[i] as number)}"`)} ${cumulative}`);
      }
      out.push(`${this.name}_bucket${renderLabels(this.labelNames, k, 'le="+Inf"')} ${s.count}`);
      out.push(`${this.name}_sum${renderLabels(this.labelNames, k)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${renderLabels(this.labelNames, k)} ${s.count}`);
    }
  }
}

/** Exponential buckets, as Prometheus' ExponentialBuckets(start, factor, count). */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  assert(start > 0 && factor > 1 && count >= 1, 'bad bucket parameters');
  const out: number[] = [];
  let v = start;
  for (let i = 0; i < count; i++) {
    out.push(v);
    v *= factor;
  }
  return out;
}

export class Registry {
  private readonly metrics = new Map<string, Metric>();

  private add<M extends Metric>(m: M): M {
    assert(!this.metrics.has(m.name), `metric ${m.name} registered twice`);
    this.metrics.set(m.name, m);
    return m;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  /** The Prometheus text exposition of every metric, sorted by name. */
  render(): string {
    const out: string[] = [];
    for (const name of [...this.metrics.keys()].sort()) this.metrics.get(name)?.render(out);
    return out.join('\n') + '\n';
  }
}
