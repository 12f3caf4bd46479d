// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- the parser ships no types; its declaration lives beside its one user, and the layer check (no-orphans) counts this reference as the declaration's importer
/// <reference path="./parse-prometheus-text-format.d.ts" />
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

/** One sample of a scrape: its full name (a histogram's `_bucket` included), its labels, its value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * The samples of a Prometheus text-format exposition (a pod's /metrics), read by parse-prometheus-text-format.
 * Two of that parser's habits (1.1.1) are worked around here, not by reading the format ourselves:
 * - for a family TYPEd histogram or summary it folds every series into one sample: the `le` buckets of whichever
 *   label set came last win, and labelled _sum/_count lines are dropped, so route="infer" could not be told from the
 *   health routes. Without its `# TYPE` lines every family is untyped and each sample line comes back as written,
 *   with all its labels, `le` among them; the analysis knows its metrics by their full names.
 * - it drops the last sample when the text does not end with a newline: one is added.
 * A line it cannot read throws; the caller says whose metrics they were.
 */
export function parseExposition(text: string): Sample[] {
  const untyped = text
    .split('\n')
    .filter((l) => !/^\s*#\s+TYPE\s/.test(l))
    .join('\n');
  const out: Sample[] = [];
  for (const family of parsePrometheusTextFormat(`${untyped}\n`))
    for (const s of family.metrics) if (s.value !== undefined) out.push({ name: family.name, labels: s.labels ?? {}, value: sampleValue(s.value) });
  return out;
}

/** A sample value or an `le` bound as the text format writes it: a Go float, or +Inf, -Inf, NaN. */
export function sampleValue(v: string): number {
  const t = v.trim();
  if (/^\+?inf$/i.test(t)) return Infinity;
  if (/^-inf$/i.test(t)) return -Infinity;
  return t === '' ? NaN : Number(t);
}
