// Package kubernetes holds zipq's Kubernetes manifests; its test decodes
// each of them with the Kubernetes API types (and KEDA's), strictly, and
// checks what zipq relies on, so a typo or a drifted name fails CI. There is
// no cluster where CI runs: this is as far as a manifest is checked here.
package kubernetes

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"go.uber.org/goleak"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type objects struct {
	deployments map[string]*appsv1.Deployment
	services    []*corev1.Service
	scaled      []*kedav1alpha1.ScaledObject
	auths       map[string]*kedav1alpha1.TriggerAuthentication
	configs     map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	jobs        []*batchv1.Job
}

// strict decodes a document into v, refusing unknown fields (a typo).
func strict(t *testing.T, file string, doc []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// decode is strict into a new T.
func decode[T any](t *testing.T, file string, doc []byte) *T {
	t.Helper()
	v := new(T)
	strict(t, file, doc, v)
	return v
}

func load(t *testing.T) objects {
	t.Helper()
	var kust struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Namespace  string   `json:"namespace"`
		Resources  []string `json:"resources"`
	}
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	strict(t, "kustomization.yaml", b, &kust)
	files, _ := os.ReadDir(".")
	for _, f := range files {
		if strings.HasSuffix(f.Name(), ".yaml") && f.Name() != "kustomization.yaml" && !slices.Contains(kust.Resources, f.Name()) {
			t.Errorf("%s is not listed in kustomization.yaml", f.Name())
		}
	}
	o := objects{deployments: map[string]*appsv1.Deployment{}, auths: map[string]*kedav1alpha1.TriggerAuthentication{},
		configs: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, file := range kust.Resources {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("kustomization.yaml lists %s: %v", file, err)
		}
		for _, doc := range bytes.Split(b, []byte("\n---\n")) {
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			switch head.APIVersion + " " + head.Kind {
			case "v1 Namespace":
				decode[corev1.Namespace](t, file, doc)
			case "v1 ConfigMap":
				v := decode[corev1.ConfigMap](t, file, doc)
				o.configs[v.Name] = v
			case "v1 Secret":
				v := decode[corev1.Secret](t, file, doc)
				o.secrets[v.Name] = v
			case "v1 Service":
				o.services = append(o.services, decode[corev1.Service](t, file, doc))
			case "apps/v1 Deployment":
				v := decode[appsv1.Deployment](t, file, doc)
				o.deployments[v.Name] = v
			case "batch/v1 Job":
				o.jobs = append(o.jobs, decode[batchv1.Job](t, file, doc))
			case "keda.sh/v1alpha1 ScaledObject":
				o.scaled = append(o.scaled, decode[kedav1alpha1.ScaledObject](t, file, doc))
			case "keda.sh/v1alpha1 TriggerAuthentication":
				v := decode[kedav1alpha1.TriggerAuthentication](t, file, doc)
				o.auths[v.Name] = v
			default:
				t.Fatalf("%s: unexpected %s %s", file, head.APIVersion, head.Kind)
			}
		}
	}
	return o
}

func TestKubernetesManifests(t *testing.T) {
	o := load(t)
	// Every zipq container: the image's subcommand, config and secret from
	// the environment, resources, and probes (readiness on /health; liveness
	// never on /health, which is 503 during a database outage the queue
	// rides out).
	containers := map[string]corev1.Container{}
	for name, d := range o.deployments {
		if !equalLabels(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("%s: selector does not match its pod labels", name)
		}
		containers[name] = d.Spec.Template.Spec.Containers[0]
	}
	for _, j := range o.jobs {
		containers[j.Name] = j.Spec.Template.Spec.Containers[0]
	}
	want := map[string]string{"zipq-collector": "collector", "zipq-query": "query", "zipq-migrate": "migrate"}
	for name, cmd := range want {
		c, ok := containers[name]
		if !ok {
			t.Fatalf("%s missing", name)
		}
		if len(c.Args) != 1 || c.Args[0] != cmd {
			t.Errorf("%s runs %v, want zipq %s", name, c.Args, cmd)
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: memory request and limit required", name)
		}
		var refs []string
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil && o.configs[e.ConfigMapRef.Name] != nil || e.SecretRef != nil && o.secrets[e.SecretRef.Name] != nil {
				refs = append(refs, "ok")
			}
		}
		if len(refs) != 2 {
			t.Errorf("%s: takes its environment from the ConfigMap and the Secret", name)
		}
		if cmd == "migrate" {
			continue
		}
		if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/health" || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("%s: readiness probe must be GET /health over HTTPS", name)
		}
		// Tokens and TLS as shipped: the files the config names are the
		// Secrets mounted where it says.
		cfg := o.configs["zipq"].Data
		mounted := map[string]string{}
		for _, m := range c.VolumeMounts {
			for _, v := range o.deployments[name].Spec.Template.Spec.Volumes {
				if v.Name == m.Name && v.Secret != nil {
					mounted[m.MountPath] = v.Secret.SecretName
				}
			}
		}
		for key, secret := range map[string]string{"ZIPQ_TOKENS_FILE": "zipq-tokens", "ZIPQ_TLS_CERT_FILE": "zipq-tls", "ZIPQ_TLS_KEY_FILE": "zipq-tls"} {
			dir := cfg[key][:max(strings.LastIndexByte(cfg[key], '/'), 0)]
			if cfg[key] == "" || mounted[dir] != secret {
				t.Errorf("%s: %s=%q must be in the mounted Secret %s (mounts: %v)", name, key, cfg[key], secret, mounted)
			}
		}
		if p := c.LivenessProbe; p == nil || p.HTTPGet != nil && p.HTTPGet.Path == "/health" {
			t.Errorf("%s: needs a liveness probe that is not /health", name)
		}
	}
	if cfg := o.configs["zipq"]; cfg == nil || cfg.Data["ZIPQ_HTTP_ADDR"] != "0.0.0.0:9411" || cfg.Data["RABBIT_QUEUE"] != "zipkin" ||
		len(strings.Split(cfg.Data["RABBIT_ADDRESSES"], ",")) != 3 {
		t.Errorf("config: HTTP on all interfaces, queue zipkin, three RabbitMQ nodes: %+v", cfg)
	}
	if tok := o.secrets["zipq-tokens"]; tok == nil || !strings.HasSuffix(o.configs["zipq"].Data["ZIPQ_TOKENS_FILE"], "/tokens") {
		t.Error("the Secret zipq-tokens must hold the tokens file under the key tokens")
	} else if _, ok := tok.StringData["tokens"]; !ok {
		t.Error("the Secret zipq-tokens must hold the key tokens")
	}
	// The query Service reaches the query pods.
	if len(o.services) != 1 || !equalLabels(o.services[0].Spec.Selector, o.deployments["zipq-query"].Spec.Template.Labels) {
		t.Errorf("the Service must select the query pods")
	}
	// KEDA scales the collectors on the span queue, with credentials that
	// exist, never below two replicas.
	if len(o.scaled) != 1 {
		t.Fatalf("want one ScaledObject, got %d", len(o.scaled))
	}
	so := o.scaled[0]
	if so.Spec.ScaleTargetRef.Name != "zipq-collector" || so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount < 2 {
		t.Errorf("ScaledObject must target zipq-collector with at least 2 replicas: %+v", so.Spec)
	}
	modes := map[string]bool{}
	for _, tr := range so.Spec.Triggers {
		if tr.Type != "rabbitmq" || tr.Metadata["queueName"] != "zipkin" || tr.Metadata["protocol"] != "http" || tr.Metadata["value"] == "" {
			t.Errorf("trigger %+v: want rabbitmq on queue zipkin over http (unacked counted) with a value", tr)
		}
		modes[tr.Metadata["mode"]] = true
		a := o.auths[tr.AuthenticationRef.Name]
		if a == nil || len(a.Spec.SecretTargetRef) != 1 || o.secrets[a.Spec.SecretTargetRef[0].Name] == nil ||
			o.secrets[a.Spec.SecretTargetRef[0].Name].StringData[a.Spec.SecretTargetRef[0].Key] == "" {
			t.Errorf("trigger %s: its TriggerAuthentication must point at a key of the Secret", tr.Metadata["mode"])
		}
	}
	if !modes["QueueLength"] || !modes["MessageRate"] {
		t.Errorf("scale on both the backlog and the publish rate: %v", modes)
	}
}

func equalLabels(a, b map[string]string) bool {
	if len(a) == 0 {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
