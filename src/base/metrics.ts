/**
 * A small Prometheus registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format (version 0.0.4) that /metrics serves,
 * laid out as etcd's Go client library lays it out: families sorted by name,
 * label names sorted, series sorted by label values, numbers as Go's
 * strconv 'g' formats them, and a labelled family with no series yet left out.
 * Modules register their metrics with etcd's names (etcd_disk_wal_fsync_duration_seconds,
 * etcd_server_has_leader, ...) on a Registry passed in, never on a global, so
 * that several members can live in one test process.
 *
 * On a hot path, resolve a labelled series once with `labels(...)` and keep
 * the child: its inc/observe is a number update, with no string built.
 */
import { assert } from './assert.js';

export type Labels = Readonly<Record<string, string>>;

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** A number as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it (the Prometheus Go client's format). */
export function formatGoFloat(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const [mantissa = '', exponent = '0'] = v.toExponential().split('e');
  const exp = Number(exponent);
  if (exp >= -4 && exp < 6) return String(v);
  const abs = Math.abs(exp);
  return `${mantissa}e${exp < 0 ? '-' : '+'}${abs < 10 ? '0' : ''}${abs}`;
}

interface Metric {
  readonly name: string;
  readonly help: string;
  render(out: string[]): void;
}

/** One labelled series of a vector. */
interface Series {
  /** The label values in declaration order. */
  readonly values: readonly string[];
}

abstract class Vector<S extends Series> implements Metric {
  private readonly series = new Map<string, S>();
  /** The one series of a vector without labels, once made. */
  private unlabeled: S | undefined;
  /** Label positions in name order (the order Go renders them in). */
  private readonly sortedOrder: readonly number[];

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    assert(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name), `bad metric name ${name}`);
    this.sortedOrder = labelNames.map((_, i) => i).sort((a, b) => ((labelNames[a] as string) < (labelNames[b] as string) ? -1 : 1));
  }

  protected abstract newSeries(values: readonly string[]): S;
  protected abstract renderSeries(out: string[], s: S, labels: string): void;
  protected abstract readonly type: string;

  /** The series for these labels, created (at zero) if new. */
  protected seriesOf(labels: Labels | undefined): S {
    // Most metrics have no labels and are bumped on hot paths: no array, no key string.
    if (this.labelNames.length === 0 && this.unlabeled !== undefined) return this.unlabeled;
    const values = this.labelNames.map((n) => {
      const v = labels?.[n];
      assert(v !== undefined, `${this.name}: missing label ${n}`);
      return v;
    });
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (s === undefined) {
      s = this.newSeries(values);
      this.series.set(key, s);
      if (values.length === 0) this.unlabeled = s;
    }
    return s;
  }

  protected peek(labels: Labels | undefined): S | undefined {
    return this.series.get(this.labelNames.map((n) => labels?.[n] ?? '').join('\u0000'));
  }

  /** `{a="x",b="y"` in name order, without the closing brace; '' without labels. */
  private labelText(s: S): string {
    if (this.labelNames.length === 0) return '';
    return `{${this.sortedOrder.map((i) => `${this.labelNames[i] ?? ''}="${escapeLabelValue(s.values[i] ?? '')}"`).join(',')}`;
  }

  render(out: string[]): void {
    if (this.labelNames.length === 0) this.seriesOf(undefined);
    if (this.series.size === 0) return;
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`);
    const rows = [...this.series.values()].map((s) => ({ s, sortKey: this.sortedOrder.map((i) => s.values[i] ?? '') }));
    rows.sort((a, b) => compareValues(a.sortKey, b.sortKey));
    for (const { s } of rows) this.renderSeries(out, s, this.labelText(s));
  }
}

function compareValues(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as string;
    const y = b[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** `labels` (from labelText) with one more label and the closing brace. */
function closeLabels(labels: string, extra?: string): string {
  if (extra === undefined) return labels === '' ? '' : `${labels}}`;
  return labels === '' ? `{${extra}}` : `${labels},${extra}}`;
}

export class CounterChild implements Series {
  value = 0;
  constructor(readonly values: readonly string[]) {}

  inc(by = 1): void {
    assert(by >= 0, 'counters only go up');
    this.value += by;
  }
}

export class Counter extends Vector<CounterChild> {
  protected readonly type = 'counter';
  private collect: (() => number) | undefined;

  /** Reads the (monotonic) value at scrape time, e.g. from the process (an unlabelled counter only). */
  collectWith(fn: () => number): this {
    assert(this.labelNames.length === 0, 'collectWith is for unlabelled counters');
    this.collect = fn;
    return this;
  }

  /** The series for these labels, to keep and increment without a lookup. */
  labels(labels: Labels): CounterChild {
    return this.seriesOf(labels);
  }

  inc(labels?: Labels, by = 1): void {
    this.seriesOf(labels).inc(by);
  }

  get(labels?: Labels): number {
    return this.peek(labels)?.value ?? 0;
  }

  protected newSeries(values: readonly string[]): CounterChild {
    return new CounterChild(values);
  }

  protected renderSeries(out: string[], s: CounterChild, labels: string): void {
    out.push(`${this.name}${closeLabels(labels)} ${formatGoFloat(this.collect !== undefined ? this.collect() : s.value)}`);
  }
}

export class GaugeChild implements Series {
  value = 0;
  constructor(readonly values: readonly string[]) {}

  set(v: number): void {
    this.value = v;
  }
  inc(by = 1): void {
    this.value += by;
  }
  dec(by = 1): void {
    this.value -= by;
  }
}

export class Gauge extends Vector<GaugeChild> {
  protected readonly type = 'gauge';
  private collect: (() => number) | undefined;

  labels(labels: Labels): GaugeChild {
    return this.seriesOf(labels);
  }

  set(value: number, labels?: Labels): void {
    this.seriesOf(labels).set(value);
  }

  inc(labels?: Labels, by = 1): void {
    this.seriesOf(labels).inc(by);
  }

  dec(labels?: Labels, by = 1): void {
    this.seriesOf(labels).dec(by);
  }

  get(labels?: Labels): number {
    if (this.collect !== undefined) return this.collect();
    return this.peek(labels)?.value ?? 0;
  }

  /** Reads the value at scrape time (an unlabelled gauge only). */
  collectWith(fn: () => number): this {
    assert(this.labelNames.length === 0, 'collectWith is for unlabelled gauges');
    this.collect = fn;
    return this;
  }

  protected newSeries(values: readonly string[]): GaugeChild {
    return new GaugeChild(values);
  }

  protected renderSeries(out: string[], s: GaugeChild, labels: string): void {
    out.push(`${this.name}${closeLabels(labels)} ${formatGoFloat(this.collect !== undefined ? this.collect() : s.value)}`);
  }
}

export class HistogramChild implements Series {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(
    readonly values: readonly string[],
    private readonly buckets: readonly number[],
  ) {
    this.counts = new Array<number>(buckets.length).fill(0);
  }

  observe(value: number): void {
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= (this.buckets[i] as number)) {
        this.counts[i] = (this.counts[i] as number) + 1;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

export class Histogram extends Vector<HistogramChild> {
  protected readonly type = 'histogram';

  constructor(name: string, help: string, labelNames: readonly string[], readonly buckets: readonly number[]) {
    super(name, help, labelNames);
    for (let i = 1; i < buckets.length; i++) assert((buckets[i] as number) > (buckets[i - 1] as number), 'buckets must increase');
  }

  labels(labels: Labels): HistogramChild {
    return this.seriesOf(labels);
  }

  observe(value: number, labels?: Labels): void {
    this.seriesOf(labels).observe(value);
  }

  /** How many observations a series has had. */
  countOf(labels?: Labels): number {
    return this.peek(labels)?.count ?? 0;
  }

  protected newSeries(values: readonly string[]): HistogramChild {
    return new HistogramChild(values, this.buckets);
  }

  protected renderSeries(out: string[], s: HistogramChild, labels: string): void {
    let cumulative = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += s.counts[i] as number;
      out.push(`${this.name}_bucket${closeLabels(labels, `le="${formatGoFloat(this.buckets[i] as number)}"`)} ${cumulative}`);
    }
    out.push(`${this.name}_bucket${closeLabels(labels, 'le="+Inf"')} ${s.count}`);
    out.push(`${this.name}_sum${closeLabels(labels)} ${formatGoFloat(s.sum)}`);
    out.push(`${this.name}_count${closeLabels(labels)} ${s.count}`);
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
  private readonly collectors: (() => void)[] = [];

  /** Runs fn at the start of every render: for series whose labels follow state (a version label). */
  beforeRender(fn: () => void): void {
    this.collectors.push(fn);
  }

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
    for (const fn of this.collectors) fn();
    for (const name of [...this.metrics.keys()].sort()) this.metrics.get(name)?.render(out);
    return out.join('\n') + '\n';
  }
}
