// helm-render renders a Helm chart the way `helm template` does, for tests on machines where no helm binary can be
// installed: Go's text/template with sprig's functions plus Helm's own (include, tpl, required, toYaml, fromYaml,
// toToml, toJson, lookup), the Values (chart defaults deep-merged with -f files and --set-string pairs), Release,
// Chart, Capabilities, Files and Template objects, `missingkey=zero` with "<no value>" removed, and the output as
// YAML documents each headed by "# Source: <chart>/templates/<file>". With -json it prints the documents as one
// JSON array instead (for schema validators). It is built from Debian's golang-github-masterminds-sprig-dev,
// golang-k8s-sigs-yaml-dev and golang-github-burntsushi-toml-dev in GOPATH mode (see the chart test).
//
//	helm-render [-f values.yaml]... [-name RELEASE] [-namespace NS] [-json] [-notes] CHART_DIR
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/BurntSushi/toml"
	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

func main() {
	var files valueFiles
	flag.Var(&files, "f", "values file (repeatable; later files win)")
	name := flag.String("name", "nacelle", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	asJSON := flag.Bool("json", false, "print the documents as one JSON array")
	notes := flag.Bool("notes", false, "print the rendered NOTES.txt instead of the manifests")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: helm-render [-f values.yaml]... [-name RELEASE] [-namespace NS] [-json] [-notes] CHART_DIR")
		os.Exit(2)
	}
	out, err := render(flag.Arg(0), files, *name, *namespace, *asJSON, *notes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helm-render:", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}

// readYAML parses YAML as Helm does: through JSON, numbers kept as json.Number.
func readYAML(data []byte) (map[string]interface{}, error) {
	values := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &values, func(d *json.Decoder) *json.Decoder { d.UseNumber(); return d }); err != nil {
		return nil, err
	}
	return values, nil
}

// mergeValues overlays src on dst as Helm's coalescing does: maps merge key by key, anything else replaces, and a
// null in src deletes the key.
func mergeValues(dst, src map[string]interface{}) map[string]interface{} {
	for key, value := range src {
		if value == nil {
			delete(dst, key)
			continue
		}
		srcMap, srcIsMap := value.(map[string]interface{})
		dstMap, dstIsMap := dst[key].(map[string]interface{})
		if srcIsMap && dstIsMap {
			dst[key] = mergeValues(dstMap, srcMap)
		} else {
			dst[key] = value
		}
	}
	return dst
}

// chartFiles is .Files: the chart's non-template files by their path in the chart.
type chartFiles map[string][]byte

func (f chartFiles) Get(name string) string { return string(f[name]) }

func (f chartFiles) GetBytes(name string) []byte { return f[name] }

func render(chartDir string, valueFiles []string, releaseName, namespace string, asJSON, notes bool) (string, error) {
	chartYAML, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	chartMeta, err := readYAML(chartYAML)
	if err != nil {
		return "", fmt.Errorf("Chart.yaml: %w", err)
	}
	chartName, _ := chartMeta["name"].(string)
	if chartName == "" {
		return "", errors.New("Chart.yaml has no name")
	}
	// Helm exposes Chart.yaml's fields with capitalised names (.Chart.Name, .Chart.AppVersion).
	chart := map[string]interface{}{}
	for key, value := range chartMeta {
		chart[strings.ToUpper(key[:1])+key[1:]] = value
	}

	values := map[string]interface{}{}
	if data, err := os.ReadFile(filepath.Join(chartDir, "values.yaml")); err == nil {
		if values, err = readYAML(data); err != nil {
			return "", fmt.Errorf("values.yaml: %w", err)
		}
	}
	for _, file := range valueFiles {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		overlay, err := readYAML(data)
		if err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		values = mergeValues(values, overlay)
	}

	files := chartFiles{}
	var templates []string
	err = filepath.Walk(chartDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, "templates/") {
			templates = append(templates, rel)
			return nil
		}
		data, err := os.ReadFile(p)
		files[rel] = data
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(templates)

	root := template.New(chartName).Option("missingkey=zero")
	root.Funcs(funcMap(root))
	for _, rel := range templates {
		data, err := os.ReadFile(filepath.Join(chartDir, rel))
		if err != nil {
			return "", err
		}
		if _, err := root.New(path.Join(chartName, rel)).Parse(string(data)); err != nil {
			return "", err
		}
	}

	var documents []string
	var sources []string
	for _, rel := range templates {
		base := path.Base(rel)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != notes {
			continue
		}
		name := path.Join(chartName, rel)
		top := map[string]interface{}{
			"Values": values,
			"Chart":  chart,
			"Release": map[string]interface{}{
				"Name": releaseName, "Namespace": namespace, "Service": "Helm",
				"IsInstall": true, "IsUpgrade": false, "Revision": 1,
			},
			"Capabilities": map[string]interface{}{
				"KubeVersion": map[string]interface{}{"Version": "v1.30.0", "Major": "1", "Minor": "30", "GitVersion": "v1.30.0"},
				"HelmVersion": map[string]interface{}{"Version": "v3.14.0"},
			},
			"Files":    files,
			"Template": map[string]interface{}{"Name": name, "BasePath": path.Join(chartName, "templates")},
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, top); err != nil {
			return "", err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if isNotes {
			return text, nil
		}
		for _, document := range strings.Split(text, "\n---") {
			if strings.TrimSpace(stripComments(document)) == "" {
				continue
			}
			documents = append(documents, strings.TrimPrefix(document, "---\n"))
			sources = append(sources, name)
		}
	}
	if notes {
		return "", nil
	}

	if asJSON {
		var all []json.RawMessage
		for i, document := range documents {
			data, err := yaml.YAMLToJSON([]byte(document))
			if err != nil {
				return "", fmt.Errorf("%s renders invalid YAML: %w\n%s", sources[i], err, document)
			}
			all = append(all, data)
		}
		data, err := json.MarshalIndent(all, "", "  ")
		return string(data) + "\n", err
	}
	var out strings.Builder
	for i, document := range documents {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", sources[i], strings.Trim(document, "\n"))
	}
	return out.String(), nil
}

func stripComments(document string) string {
	var kept []string
	for _, line := range strings.Split(document, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

// funcMap is sprig's text functions (without env and expandenv, as in Helm) and Helm's own.
func funcMap(root *template.Template) template.FuncMap {
	functions := sprig.TxtFuncMap()
	delete(functions, "env")
	delete(functions, "expandenv")
	includeDepth := 0
	extra := template.FuncMap{
		"toYaml": func(v interface{}) string {
			data, err := yaml.Marshal(v)
			if err != nil {
				return ""
			}
			return strings.TrimSuffix(string(data), "\n")
		},
		"fromYaml": func(s string) map[string]interface{} {
			values, err := readYAML([]byte(s))
			if err != nil {
				return map[string]interface{}{"Error": err.Error()}
			}
			return values
		},
		"toJson": func(v interface{}) string {
			data, err := json.Marshal(v)
			if err != nil {
				return ""
			}
			return string(data)
		},
		"toToml": func(v interface{}) string {
			var buf bytes.Buffer
			if err := toml.NewEncoder(&buf).Encode(tomlNumbers(v)); err != nil {
				return err.Error()
			}
			return buf.String()
		},
		"required": func(message string, value interface{}) (interface{}, error) {
			if value == nil {
				return nil, errors.New(message)
			}
			if s, ok := value.(string); ok && s == "" {
				return nil, errors.New(message)
			}
			return value, nil
		},
		"include": func(name string, data interface{}) (string, error) {
			if includeDepth > 1000 {
				return "", fmt.Errorf("include of %q: too deeply nested", name)
			}
			includeDepth++
			defer func() { includeDepth-- }()
			var buf bytes.Buffer
			err := root.ExecuteTemplate(&buf, name, data)
			return buf.String(), err
		},
		"tpl": func(text string, data interface{}) (string, error) {
			clone, err := root.Clone()
			if err != nil {
				return "", err
			}
			t, err := clone.New("tpl").Parse(text)
			if err != nil {
				return "", err
			}
			var buf bytes.Buffer
			err = t.Execute(&buf, data)
			return strings.ReplaceAll(buf.String(), "<no value>", ""), err
		},
		// Rendering without a cluster: lookup finds nothing, as in `helm template`.
		"lookup": func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
			return map[string]interface{}{}, nil
		},
	}
	for name, function := range extra {
		functions[name] = function
	}
	return functions
}

// tomlNumbers turns json.Number values (how Helm reads YAML numbers) into int64 or float64, which TOML encodes as
// numbers (Helm's TOML library does the same).
func tomlNumbers(v interface{}) interface{} {
	switch value := v.(type) {
	case map[string]interface{}:
		out := make(map[string]interface{}, len(value))
		for key, item := range value {
			out[key] = tomlNumbers(item)
		}
		return out
	case []interface{}:
		out := make([]interface{}, len(value))
		for i, item := range value {
			out[i] = tomlNumbers(item)
		}
		return out
	case json.Number:
		if i, err := value.Int64(); err == nil {
			return i
		}
		if f, err := value.Float64(); err == nil && !math.IsInf(f, 0) {
			return f
		}
		return value.String()
	default:
		return v
	}
}
