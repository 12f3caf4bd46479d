// parse-prometheus-text-format ships no types: the shape its README documents (prom2json's), as far as exposition.ts
// reads it. Values stay strings, as in the text ("+Inf", "NaN").
declare module 'parse-prometheus-text-format' {
  interface PromSample {
    value?: string;
    labels?: Record<string, string>;
    timestamp_ms?: string;
    /** a histogram's or summary's, folded into one sample (exposition.ts keeps the parser from doing that) */
    buckets?: Record<string, string>;
    quantiles?: Record<string, string>;
    count?: string;
    sum?: string;
  }
  interface PromFamily {
    name: string;
    help: string;
    type: string;
    metrics: PromSample[];
  }
  /** Throws (an InvalidLineError) on a line it cannot read. */
  function parsePrometheusTextFormat(text: string): PromFamily[];
  export = parsePrometheusTextFormat;
}
