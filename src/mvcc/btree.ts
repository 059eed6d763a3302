/**
 * An ordered map from string keys to values: a B+tree with values in the
 * leaves. Keys are latin1 byte strings (backend's bytesToKey), so JavaScript's
 * `<` on them is etcd's byte-wise key order. Empty nodes are removed on
 * delete; partly filled ones are left as they are (no merging), which keeps
 * deletes simple at the cost of some slack after heavy churn.
 */
import { assert } from '../base/index.js';

/** Entries per node before it splits. */
const nodeEntriesMax = 64;

interface Leaf<V> {
  readonly leaf: true;
  keys: string[];
  vals: V[];
}

interface Inner<V> {
  readonly leaf: false;
  /** keys[i] is the smallest key under children[i + 1]; keys.length === children.length - 1. */
  keys: string[];
  children: Node<V>[];
}

type Node<V> = Leaf<V> | Inner<V>;

/** Index of the first key >= key. */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first key > key: the child of an inner node that may hold key. */
function upperBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string) <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A leaf without keys, or an inner node whose only child is empty (non-empty siblings are never removed). */
function isEmpty<V>(node: Node<V>): boolean {
  let n = node;
  while (!n.leaf) {
    if (n.children.length !== 1) return false;
    n = n.children[0] as Node<V>;
  }
  return n.keys.length === 0;
}

interface Split<V> {
  readonly key: string;
  readonly node: Node<V>;
}

export class SortedMap<V> {
  private root: Node<V> = { leaf: true, keys: [], vals: [] };
  private count = 0;

  /**
   * Builds the map from keys already sorted ascending and distinct, with
   * full nodes, in O(n): how the index is rebuilt at open (inserting a
   * million keys in random order costs several times more).
   */
  static fromSorted<V>(keys: readonly string[], vals: readonly V[]): SortedMap<V> {
    assert(keys.length === vals.length, 'fromSorted: one value per key');
    const m = new SortedMap<V>();
    if (keys.length === 0) return m;
    for (let i = 1; i < keys.length; i++) {
      if (!((keys[i - 1] as string) < (keys[i] as string))) assert(false, 'fromSorted: keys ascending and distinct');
    }
    let level: Node<V>[] = [];
    const firsts: string[] = [];
    for (let i = 0; i < keys.length; i += nodeEntriesMax) {
      const ks = keys.slice(i, i + nodeEntriesMax);
      level.push({ leaf: true, keys: ks, vals: vals.slice(i, i + nodeEntriesMax) });
      firsts.push(ks[0] as string);
    }
    let levelFirsts = firsts;
    while (level.length > 1) {
      const up: Node<V>[] = [];
      const upFirsts: string[] = [];
      for (let i = 0; i < level.length; i += nodeEntriesMax) {
        up.push({ leaf: false, keys: levelFirsts.slice(i + 1, i + nodeEntriesMax), children: level.slice(i, i + nodeEntriesMax) });
        upFirsts.push(levelFirsts[i] as string);
      }
      level = up;
      levelFirsts = upFirsts;
    }
    m.root = level[0] as Node<V>;
    m.count = keys.length;
    return m;
  }

  get size(): number {
    return this.count;
  }

  get(key: string): V | undefined {
    let node = this.root;
    while (!node.leaf) node = node.children[upperBound(node.keys, key)] as Node<V>;
    const i = lowerBound(node.keys, key);
    return node.keys[i] === key ? node.vals[i] : undefined;
  }

  /** Inserts or replaces. */
  set(key: string, value: V): void {
    const split = this.insert(this.root, key, value);
    if (split !== undefined) {
      this.root = { leaf: false, keys: [split.key], children: [this.root, split.node] };
    }
  }

  /** Removes key; returns whether it was there. */
  delete(key: string): boolean {
    const removed = this.remove(this.root, key);
    if (removed) {
      this.count--;
      while (!this.root.leaf && this.root.children.length === 1) this.root = this.root.children[0] as Node<V>;
    }
    return removed;
  }

  /**
   * Calls fn for each entry with start <= key < end (end undefined: no upper
   * bound), in key order, until fn returns false. The map must not be
   * modified during the walk.
   */
  forEachFrom(start: string, end: string | undefined, fn: (key: string, value: V) => boolean | void): void {
    this.walk(this.root, start, end, fn);
  }

  private walk(node: Node<V>, start: string, end: string | undefined, fn: (key: string, value: V) => boolean | void): boolean {
    if (node.leaf) {
      for (let i = lowerBound(node.keys, start); i < node.keys.length; i++) {
        const k = node.keys[i] as string;
        if (end !== undefined && k >= end) return false;
        if (fn(k, node.vals[i] as V) === false) return false;
      }
      return true;
    }
    for (let c = upperBound(node.keys, start); c < node.children.length; c++) {
      if (c > 0 && end !== undefined && (node.keys[c - 1] as string) >= end) return false;
      if (!this.walk(node.children[c] as Node<V>, start, end, fn)) return false;
    }
    return true;
  }

  private insert(node: Node<V>, key: string, value: V): Split<V> | undefined {
    if (node.leaf) {
      const i = lowerBound(node.keys, key);
      if (node.keys[i] === key) {
        node.vals[i] = value;
        return undefined;
      }
      node.keys.splice(i, 0, key);
      node.vals.splice(i, 0, value);
      this.count++;
      if (node.keys.length <= nodeEntriesMax) return undefined;
      const half = node.keys.length >>> 1;
      const right: Leaf<V> = { leaf: true, keys: node.keys.slice(half), vals: node.vals.slice(half) };
      node.keys.length = half;
      node.vals.length = half;
      return { key: right.keys[0] as string, node: right };
    }
    const c = upperBound(node.keys, key);
    const split = this.insert(node.children[c] as Node<V>, key, value);
    if (split === undefined) return undefined;
    node.keys.splice(c, 0, split.key);
    node.children.splice(c + 1, 0, split.node);
    if (node.children.length <= nodeEntriesMax) return undefined;
    const half = node.children.length >>> 1;
    const up = node.keys[half - 1] as string;
    const right: Inner<V> = { leaf: false, keys: node.keys.slice(half), children: node.children.slice(half) };
    node.keys.length = half - 1;
    node.children.length = half;
    return { key: up, node: right };
  }

  private remove(node: Node<V>, key: string): boolean {
    if (node.leaf) {
      const i = lowerBound(node.keys, key);
      if (node.keys[i] !== key) return false;
      node.keys.splice(i, 1);
      node.vals.splice(i, 1);
      return true;
    }
    const c = upperBound(node.keys, key);
    const child = node.children[c] as Node<V>;
    if (!this.remove(child, key)) return false;
    if (isEmpty(child) && node.children.length > 1) {
      node.children.splice(c, 1);
      // Drop the separator in front of the removed child (or after it, for the first child).
      node.keys.splice(c === 0 ? 0 : c - 1, 1);
    }
    assert(node.keys.length === node.children.length - 1, 'btree: separators match children');
    return true;
  }
}
