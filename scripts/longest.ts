// The longest functions in src/, by lines, from the TypeScript AST: `node scripts/longest.ts [N]`.
// A refactor's "before and after" is this list at two commits.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const root = join(import.meta.dirname, '..');
const count = Number(process.argv[2] ?? 10);
const found: { lines: number; name: string; where: string }[] = [];

function nameOf(node: ts.Node): string {
  if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node)) && node.name !== undefined) {
    const owner = ts.isClassLike(node.parent) ? `${node.parent.name?.text ?? '(class)'}.` : '';
    return owner + node.name.getText();
  }
  if (ts.isConstructorDeclaration(node))
    return `${node.parent.name?.text ?? '(class)'}.constructor`;
  if (ts.isVariableDeclaration(node.parent)) return node.parent.name.getText();
  if (ts.isPropertyAssignment(node.parent)) return node.parent.name.getText();
  return '(anonymous)';
}

for (const entry of readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
  const path = join(entry.parentPath, entry.name);
  const source = ts.createSourceFile(
    path,
    readFileSync(path, 'utf8'),
    ts.ScriptTarget.Latest,
    true,
  );
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const line = (pos: number) => source.getLineAndCharacterOfPosition(pos).line;
      const first = line(node.getStart(source));
      found.push({
        lines: line(node.getEnd()) - first + 1,
        name: nameOf(node),
        where: `${relative(root, path)}:${first + 1}`,
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}

for (const f of found.sort((a, b) => b.lines - a.lines).slice(0, count)) {
  console.log(`${String(f.lines).padStart(4)}  ${f.name}  ${f.where}`);
}
