/**
 * Charts from Vega-Lite specifications, rendered headless: Vega-Lite compiles the spec to Vega, Vega's
 * scenegraph renders it to SVG (no browser, no canvas), and resvg (Rust, prebuilt from npm) rasterises the
 * SVG to PNG with the system's fonts. Specs carry their data inline; the loader refuses every URL, so a
 * chart never reaches for the network or the file system.
 *
 * @example
 * const { svg, png } = await renderChart({ data: { values: rows }, mark: 'line',
 *   encoding: { x: { field: 'step', type: 'quantitative' }, y: { field: 'value', type: 'quantitative' } } });
 */
import { compile, type TopLevelSpec } from 'vega-lite';
import { View, loader, logger, parse, Warn } from 'vega';
import { Resvg } from '@resvg/resvg-js';

export type ChartSpec = TopLevelSpec;

/** The font charts are drawn with (DejaVu Sans ships with Debian; resvg falls back to any sans-serif). */
export const CHART_FONT = 'DejaVu Sans';

/** A Vega loader that loads nothing: charts are self-contained. */
function noLoads() {
  const l = loader();
  const refuse = async (uri: string) => {
    throw new Error(`charts load no data from outside the spec (asked for ${uri})`);
  };
  l.load = refuse;
  l.sanitize = refuse as never;
  l.http = refuse;
  l.file = refuse;
  return l;
}

/** The SVG of a Vega-Lite spec. Vega's warnings and errors (a failed load among them) are thrown, not logged. */
export async function chartSvg(spec: ChartSpec): Promise<string> {
  const vega = compile({ config: { font: CHART_FONT }, ...spec }).spec;
  const problems: string[] = [];
  const log = logger(Warn);
  log.warn = log.error = (...args: unknown[]) => {
    problems.push(args.map((a) => (a instanceof Error ? a.message : String(a))).join(' '));
    return log;
  };
  const view = new View(parse(vega), { renderer: 'none', loader: noLoads(), logger: log });
  try {
    const svg = await view.toSVG();
    if (problems.length) throw new Error(`chart: ${problems.join('; ')}`);
    return svg;
  } finally {
    view.finalize();
  }
}

/** An SVG rasterised to PNG at `scale` times its size. */
export function svgToPng(svg: string, scale = 2): Buffer {
  const r = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: CHART_FONT }, fitTo: { mode: 'zoom', value: scale }, background: 'white' });
  return r.render().asPng();
}

export async function renderChart(spec: ChartSpec, scale = 2): Promise<{ svg: string; png: Buffer }> {
  const svg = await chartSvg(spec);
  return { svg, png: svgToPng(svg, scale) };
}
