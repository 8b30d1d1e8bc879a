/**
 * docs/does-papo-help.md quotes the studies published in docs/studies/: each one's study.json must be what
 * `papo study <dir>/study.yaml --out <dir> --analyze` computes from the published results with this code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { parseStudy } from '../../pipelines/study-config.ts';
import { analyzeStudy } from '../../pipelines/study-analysis.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const STUDIES = path.join(ROOT, 'docs/studies');

for (const name of fs.readdirSync(STUDIES).filter((d) => fs.existsSync(path.join(STUDIES, d, 'study.yaml')))) {
  test(`docs/studies/${name}: its study.json is remade from its published results, figure for figure`, () => {
    const dir = path.join(STUDIES, name);
    const file = path.join(dir, 'study.yaml');
    const remade = JSON.parse(JSON.stringify(analyzeStudy(parseStudy(parse(fs.readFileSync(file, 'utf8')), file), dir)));
    const published = JSON.parse(fs.readFileSync(path.join(dir, 'study.json'), 'utf8'));
    assert.deepEqual(remade, published);
    assert.deepEqual(remade.missing, [], 'every arm x seed has its result');
  });
}
