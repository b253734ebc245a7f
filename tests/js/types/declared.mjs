// Prints, as JSON, what the given .js and .d.ts files export, and for each exported type of a
// .d.ts its property names (nested for inline object types) or its string literal values. For a
// .js file it also lists, per top-level function, the keys of the object literals it returns
// (index.js's loadInWorker builds the worker proxy that way).
// tests/test_types.py compares the two sides and the declared shapes with a real engine.
//
//   node declared.mjs WEB_DIR FILE...   (WEB_DIR: where `typescript` is installed, web/)

import { createRequire } from "node:module";
import { resolve } from "node:path";

const [webDir, ...files] = process.argv.slice(2);
const ts = createRequire(resolve(webDir, "package.json"))("typescript");

const program = ts.createProgram(files, {
  allowJs: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
  types: [],
});
const checker = program.getTypeChecker();

/** Property names of an object type (nested for inline object literals), or literal values of a union. */
function shape(type, depth = 0) {
  if (checker.isTupleType(type) || checker.isArrayType(type)) return { array: true };
  if (type.isUnion() && type.types.every((t) => t.isStringLiteral())) {
    return { literals: type.types.map((t) => t.value).sort() };
  }
  const props = {};
  for (const p of type.getProperties()) {
    const decl = p.valueDeclaration ?? p.declarations?.[0];
    const optional = Boolean(p.flags & ts.SymbolFlags.Optional);
    const entry = { optional };
    const pt = decl ? checker.getTypeOfSymbolAtLocation(p, decl) : null;
    const inline = pt && pt.symbol?.name === "__type" && !pt.getCallSignatures().length;
    if (inline && depth < 2) entry.props = shape(pt, depth + 1).props;
    props[p.name] = entry;
  }
  return { props };
}

/** {function name: sorted keys of the object literals it returns} for top-level functions. */
function returnedKeys(source) {
  const found = {};
  for (const stmt of source.statements) {
    if (!ts.isFunctionDeclaration(stmt) || !stmt.name || !stmt.body) continue;
    const keys = new Set();
    const visit = (node) => {
      if (ts.isFunctionLike(node) && node !== stmt) return; // only this function's own returns
      if (ts.isReturnStatement(node) && node.expression && ts.isObjectLiteralExpression(node.expression)) {
        for (const p of node.expression.properties) if (p.name) keys.add(p.name.getText(source));
      }
      ts.forEachChild(node, visit);
    };
    ts.forEachChild(stmt.body, visit);
    if (keys.size) found[stmt.name.text] = [...keys].sort();
  }
  return found;
}

const out = {};
for (const file of files) {
  const source = program.getSourceFile(file);
  if (!source) throw new Error(`declared.mjs: cannot read ${file}`);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  const exports = moduleSymbol ? checker.getExportsOfModule(moduleSymbol) : [];
  const entry = { values: [], types: {} };
  for (const sym of exports) {
    // A re-export (`export { X }` of an import) is an alias: judge what it points to. In web/src
    // a module's imports of "./runtime/..." (its bundle path) do not resolve; such an alias is a
    // value, since a .js file can only re-export values.
    let target = sym;
    if (sym.flags & ts.SymbolFlags.Alias) {
      const aliased = checker.getAliasedSymbol(sym);
      target = aliased && aliased.flags !== ts.SymbolFlags.None && aliased !== checker.getUnknownSymbol?.() ? aliased : null;
    }
    if (!target || target.flags & ts.SymbolFlags.Value) entry.values.push(sym.name);
    if (file.endsWith(".d.ts") && sym.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias)) {
      entry.types[sym.name] = shape(checker.getDeclaredTypeOfSymbol(sym));
    }
  }
  entry.values.sort();
  if (!file.endsWith(".d.ts")) entry.returns = returnedKeys(source);
  out[file] = entry;
}
process.stdout.write(JSON.stringify(out));
