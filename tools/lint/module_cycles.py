"""An import-linter contract: no import cycles between the modules of each given package.

``acyclic_siblings`` (import-linter's own) forbids cycles between sibling *packages*; an app's rooms may call
each other both ways (the inbox asks the send service to send; the send service tells the inbox), so this
contract is about modules: no module of a package may import, directly or through others of the package,
a module that imports it back. Imports made only for type checking do not count (set
``exclude_type_checking_imports`` in the configuration).
"""

from __future__ import annotations

from importlinter import Contract, ContractCheck, fields, output


def _cycles(graph, package: str) -> list[list[str]]:
    """Strongly connected components (Tarjan) of more than one module inside ``package``."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    inside = set(modules)
    edges = {m: sorted(x for x in graph.find_modules_directly_imported_by(m) if x in inside) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            if i < len(edges[node]):
                work.append((node, i + 1))
                nxt = edges[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


class NoModuleCyclesContract(Contract):
    type_name = "no_module_cycles"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        cycles = {package: _cycles(graph, package) for package in self.packages}  # type: ignore[attr-defined]
        cycles = {package: found for package, found in cycles.items() if found}
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for package, found in check.metadata["cycles"].items():
            for component in found:
                output.print_error(f"Modules of {package} that import each other: {', '.join(component)}")
                output.new_line()
