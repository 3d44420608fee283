package components

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Volume names inside the pod.
const (
	volPersistence = "persistence"
	volHome        = "rabbitmq-home"
	volCookie      = "erlang-cookie-secret"
	volConf        = "server-conf"
	volPlugins     = "plugins-conf"
	volTLS         = "rabbitmq-tls"
	volDefinitions = "definitions"
	containerName  = "rabbitmq"
	configHashAnno = "warren.dev/config-hash"
)

// preStopCommand keeps quorum queues available while a pod stops: it waits
// until every quorum queue this node hosts has enough other online members
// (quorum + 1), then drains the node (maintenance mode moves leaders and
// clients away). Both waits are bounded by the grace period; if the wait
// times out the node drains anyway rather than hang the rollout.
func preStopCommand(grace int64) []string {
	t := grace - 10 // leave the drain some seconds before SIGKILL
	if t < 10 {
		t = 10
	}
	ts := strconv.FormatInt(t, 10)
	return []string{"/bin/sh", "-c",
		"rabbitmq-upgrade await_online_quorum_plus_one -t " + ts + " || true; rabbitmq-upgrade drain -t " + ts}
}

// startupCommand is the startup probe: the node has booted. With a
// definitions file it also makes sure the vhosts the file declares run on
// this node. On a fresh cluster whose pods start together, the first node
// creates them from the file at the end of its boot, and RabbitMQ starts a
// new vhost only on the nodes that have finished booting
// (rabbit_vhost_sup_sup:start_on_all_nodes skips booting peers, 3.10 and
// 3.13 alike); a node that read the vhost table before the vhost existed
// and was still booting never starts it, and its own import finds it
// existing and only updates it: "vhost '/' is down" on that node until it
// restarts (seen once in the lab, under load). restart_vhost starts a
// vhost that is down on the node and leaves a running one alone
// ("already running"), so the probe repairs that node and passes.
func startupCommand(cfg *Config) []string {
	check := []string{"rabbitmq-diagnostics", "-q", "check_running"}
	if !hasDefinitions(cfg) {
		return check
	}
	vhosts := []string{defaultVhost}
	if cfg.AppVhost != defaultVhost {
		vhosts = append(vhosts, cfg.AppVhost)
	}
	script := strings.Join(check, " ") + ` && for v in "$@"; do rabbitmqctl -q restart_vhost -p "$v" >/dev/null || exit 1; done`
	return append([]string{"/bin/sh", "-c", script, "startup"}, vhosts...)
}

// cookieSetupCommand copies the cookie into $HOME with the owner-only mode
// Erlang insists on; a Secret volume cannot give that mode to a non-root
// user reliably.
var cookieSetupCommand = []string{"/bin/sh", "-c",
	"cp " + cookieMountDir + "/" + cookieKey + " " + rabbitmqHome + "/" + cookieKey +
		" && chmod 600 " + rabbitmqHome + "/" + cookieKey}

// env builds the node's environment. RABBITMQ_NODENAME uses long names built
// from the pod name and the headless Service, which is what peer discovery
// turns endpoints into.
func env(cfg *Config, n Names) corev1.EnvVarArray {
	field := func(name, path string) corev1.EnvVarArgs {
		return corev1.EnvVarArgs{Name: pulumi.String(name), ValueFrom: &corev1.EnvVarSourceArgs{
			FieldRef: &corev1.ObjectFieldSelectorArgs{FieldPath: pulumi.String(path)},
		}}
	}
	val := func(name, v string) corev1.EnvVarArgs {
		return corev1.EnvVarArgs{Name: pulumi.String(name), Value: pulumi.String(v)}
	}
	return corev1.EnvVarArray{
		field("MY_POD_NAME", "metadata.name"),
		field("MY_POD_NAMESPACE", "metadata.namespace"),
		val("K8S_SERVICE_NAME", n.HeadlessService()),
		val("RABBITMQ_USE_LONGNAME", "true"),
		val("RABBITMQ_NODENAME", "rabbit@$(MY_POD_NAME).$(K8S_SERVICE_NAME).$(MY_POD_NAMESPACE)"),
		val("K8S_HOSTNAME_SUFFIX", ".$(K8S_SERVICE_NAME).$(MY_POD_NAMESPACE)"),
		val("HOME", rabbitmqHome),
		val("RABBITMQ_MNESIA_BASE", rabbitmqMnesiaBase),
		val("RABBITMQ_CONFIG_FILES", confDir),
		val("RABBITMQ_ENABLED_PLUGINS_FILE", pluginsDir+"/"+pluginsKey),
	}
}

// containerPorts lists every port the node listens on.
func containerPorts(cfg *Config) corev1.ContainerPortArray {
	p := func(name string, port int) corev1.ContainerPortArgs {
		return corev1.ContainerPortArgs{Name: pulumi.String(name), ContainerPort: pulumi.Int(port), Protocol: pulumi.String("TCP")}
	}
	ports := corev1.ContainerPortArray{p("epmd", PortEPMD), p("clustering", PortDistribution)}
	if !cfg.DisablePlainListeners {
		ports = append(ports, p("amqp", PortAMQP), p("management", PortManagement), p("prometheus", PortPrometheus))
	}
	if cfg.TLSEnabled {
		ports = append(ports, p("amqps", PortAMQPS), p("management-tls", PortManagementTLS), p("prometheus-tls", PortPrometheusTLS))
	}
	return ports
}

// readinessPort is the AMQP listener that is on. A TCP check cannot wedge a
// rollout the way a cluster-wide health check can: a node is ready when it
// accepts connections, whatever its peers do.
func readinessPort(cfg *Config) int {
	if cfg.DisablePlainListeners {
		return PortAMQPS
	}
	return PortAMQP
}

func resources(cfg *Config) *corev1.ResourceRequirementsArgs {
	limits := pulumi.StringMap{"memory": pulumi.String(cfg.MemoryLimit.String())}
	if cfg.CPULimit != nil {
		limits["cpu"] = pulumi.String(cfg.CPULimit.String())
	}
	return &corev1.ResourceRequirementsArgs{
		Requests: pulumi.StringMap{
			"cpu":    pulumi.String(cfg.CPURequest.String()),
			"memory": pulumi.String(cfg.MemoryRequest.String()),
		},
		Limits: limits,
	}
}

// affinity keeps nodes apart: preferred lets a small dev cluster (or a
// one-node lab) still schedule all pods, required guarantees in prod that one
// Kubernetes node failure takes at most one RabbitMQ node.
func affinity(cfg *Config, n Names) *corev1.AffinityArgs {
	term := corev1.PodAffinityTermArgs{
		LabelSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(n.SelectorLabels())},
		TopologyKey:   pulumi.String("kubernetes.io/hostname"),
	}
	anti := &corev1.PodAntiAffinityArgs{}
	if cfg.AntiAffinity == "required" {
		anti.RequiredDuringSchedulingIgnoredDuringExecution = corev1.PodAffinityTermArray{term}
	} else {
		anti.PreferredDuringSchedulingIgnoredDuringExecution = corev1.WeightedPodAffinityTermArray{
			corev1.WeightedPodAffinityTermArgs{Weight: pulumi.Int(100), PodAffinityTerm: term},
		}
	}
	return &corev1.AffinityArgs{PodAntiAffinity: anti}
}

// topologySpread spreads pods over zones where the cluster has them, without
// refusing to schedule where it has not.
func topologySpread(n Names) corev1.TopologySpreadConstraintArray {
	return corev1.TopologySpreadConstraintArray{
		corev1.TopologySpreadConstraintArgs{
			MaxSkew:           pulumi.Int(1),
			TopologyKey:       pulumi.String("topology.kubernetes.io/zone"),
			WhenUnsatisfiable: pulumi.String("ScheduleAnyway"),
			LabelSelector:     &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(n.SelectorLabels())},
		},
	}
}

func containerSecurityContext() *corev1.SecurityContextArgs {
	return &corev1.SecurityContextArgs{
		AllowPrivilegeEscalation: pulumi.Bool(false),
		Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
	}
}

func podSecurityContext(cfg *Config) *corev1.PodSecurityContextArgs {
	return &corev1.PodSecurityContextArgs{
		RunAsNonRoot:   pulumi.Bool(true),
		RunAsUser:      pulumi.Int(int(cfg.RunAsUser)),
		RunAsGroup:     pulumi.Int(int(cfg.FSGroup)),
		FsGroup:        pulumi.Int(int(cfg.FSGroup)),
		SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
}

func volumeMounts(cfg *Config) corev1.VolumeMountArray {
	m := corev1.VolumeMountArray{
		corev1.VolumeMountArgs{Name: pulumi.String(volHome), MountPath: pulumi.String(rabbitmqHome)},
		corev1.VolumeMountArgs{Name: pulumi.String(volPersistence), MountPath: pulumi.String(rabbitmqMnesiaBase)},
		corev1.VolumeMountArgs{Name: pulumi.String(volConf), MountPath: pulumi.String(confDir), ReadOnly: pulumi.Bool(true)},
		corev1.VolumeMountArgs{Name: pulumi.String(volPlugins), MountPath: pulumi.String(pluginsDir), ReadOnly: pulumi.Bool(true)},
	}
	if cfg.TLSEnabled {
		m = append(m, corev1.VolumeMountArgs{Name: pulumi.String(volTLS), MountPath: pulumi.String(tlsDir), ReadOnly: pulumi.Bool(true)})
	}
	if hasDefinitions(cfg) {
		m = append(m, corev1.VolumeMountArgs{Name: pulumi.String(volDefinitions), MountPath: pulumi.String(definitionsDir), ReadOnly: pulumi.Bool(true)})
	}
	return m
}

func volumes(cfg *Config, n Names) corev1.VolumeArray {
	v := corev1.VolumeArray{
		corev1.VolumeArgs{Name: pulumi.String(volHome), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{}},
		corev1.VolumeArgs{Name: pulumi.String(volCookie), Secret: &corev1.SecretVolumeSourceArgs{
			SecretName: pulumi.String(n.ErlangCookieSecret()),
		}},
		// conf.d gets rabbitmq.conf from the ConfigMap and the admin user from
		// its Secret, so the password never sits in a ConfigMap.
		corev1.VolumeArgs{Name: pulumi.String(volConf), Projected: &corev1.ProjectedVolumeSourceArgs{
			Sources: corev1.VolumeProjectionArray{
				corev1.VolumeProjectionArgs{ConfigMap: &corev1.ConfigMapProjectionArgs{
					Name:  pulumi.String(n.ConfigMap()),
					Items: corev1.KeyToPathArray{corev1.KeyToPathArgs{Key: pulumi.String(confKey), Path: pulumi.String(confFileName)}},
				}},
				corev1.VolumeProjectionArgs{Secret: &corev1.SecretProjectionArgs{
					Name:  pulumi.String(n.AdminSecret()),
					Items: corev1.KeyToPathArray{corev1.KeyToPathArgs{Key: pulumi.String(adminConfKey), Path: pulumi.String(defaultUserFile)}},
				}},
			},
		}},
		corev1.VolumeArgs{Name: pulumi.String(volPlugins), ConfigMap: &corev1.ConfigMapVolumeSourceArgs{
			Name:  pulumi.String(n.ConfigMap()),
			Items: corev1.KeyToPathArray{corev1.KeyToPathArgs{Key: pulumi.String(pluginsKey), Path: pulumi.String(pluginsKey)}},
		}},
	}
	if cfg.TLSEnabled {
		v = append(v, corev1.VolumeArgs{Name: pulumi.String(volTLS), Secret: &corev1.SecretVolumeSourceArgs{
			SecretName:  pulumi.String(tlsSecretName(cfg, n)),
			DefaultMode: pulumi.Int(0o440),
		}})
	}
	if hasDefinitions(cfg) {
		v = append(v, corev1.VolumeArgs{Name: pulumi.String(volDefinitions), Secret: &corev1.SecretVolumeSourceArgs{
			SecretName:  pulumi.String(n.DefinitionsSecret()),
			Items:       corev1.KeyToPathArray{corev1.KeyToPathArgs{Key: pulumi.String(definitionsKey), Path: pulumi.String(definitionsKey)}},
			DefaultMode: pulumi.Int(0o440),
		}})
	}
	return v
}

// pvcTemplate gives every pod its own volume for the message store.
func pvcTemplate(cfg *Config, n Names) corev1.PersistentVolumeClaimTypeArgs {
	spec := &corev1.PersistentVolumeClaimSpecArgs{
		AccessModes: pulumi.StringArray{pulumi.String("ReadWriteOnce")},
		Resources: &corev1.VolumeResourceRequirementsArgs{
			Requests: pulumi.StringMap{"storage": pulumi.String(cfg.StorageSize.String())},
		},
	}
	if cfg.StorageClass != "" {
		spec.StorageClassName = pulumi.String(cfg.StorageClass)
	}
	return corev1.PersistentVolumeClaimTypeArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:   pulumi.String(volPersistence),
			Labels: pulumi.ToStringMap(n.SelectorLabels()),
		},
		Spec: spec,
	}
}

// podAnnotations are the pod template's annotations: the hashes of the
// configuration and of the definitions file, whose changes must restart the
// nodes (they read both only at boot), and Prometheus' scrape hints.
func podAnnotations(cfg *Config) (map[string]string, error) {
	a := prometheusAnnotations(cfg)
	a[configHashAnno] = configHash(cfg)
	if hasDefinitions(cfg) {
		h, err := definitionsHash(cfg)
		if err != nil {
			return nil, err
		}
		a[definitionsHashAnno] = h
	}
	return a, nil
}

// waitForAnno tells Pulumi's Kubernetes provider what "ready" means for the
// StatefulSet, in place of its own StatefulSet await logic: that logic
// takes the status of the previous generation for the rollout's end and
// returns from an update at once, while the pods are still being replaced
// (pulumi/pulumi-kubernetes#3329, the workaround its maintainers give).
// `warren up` must return only once the rollout is over: it then
// rebalances the quorum queues' leaders.
const waitForAnno = "pulumi.com/waitFor"

// rolloutComplete is the waitFor value: every replica runs the StatefulSet's
// current template and is ready. The provider checks these only once
// status.observedGeneration has caught up with the update, so a status left
// from before the update does not count.
func rolloutComplete(replicas int) string {
	b, _ := json.Marshal([]string{
		fmt.Sprintf("jsonpath={.status.updatedReplicas}=%d", replicas),
		fmt.Sprintf("jsonpath={.status.readyReplicas}=%d", replicas),
	})
	return string(b)
}

// statefulSet runs the nodes. Parallel pod management starts all pods at
// once (peer discovery, not start order, forms the cluster, and a restarted
// cluster needs its peers up to finish booting); rolling updates replace one
// pod at a time, the preStop hook keeping quorum queues available.
func (b *builder) statefulSet(dependsOn []pulumi.Resource) (*appsv1.StatefulSet, error) {
	cfg, n := b.cfg, b.names
	annotations, err := podAnnotations(cfg)
	if err != nil {
		return nil, err
	}
	container := corev1.ContainerArgs{
		Name:            pulumi.String(containerName),
		Image:           pulumi.String(cfg.Image),
		ImagePullPolicy: pulumi.String(cfg.ImagePullPolicy),
		Env:             env(cfg, n),
		Ports:           containerPorts(cfg),
		Resources:       resources(cfg),
		VolumeMounts:    volumeMounts(cfg),
		SecurityContext: containerSecurityContext(),
		ReadinessProbe: &corev1.ProbeArgs{
			TcpSocket:           &corev1.TCPSocketActionArgs{Port: pulumi.Int(readinessPort(cfg))},
			InitialDelaySeconds: pulumi.Int(10),
			PeriodSeconds:       pulumi.Int(10),
			TimeoutSeconds:      pulumi.Int(5),
			FailureThreshold:    pulumi.Int(3),
		},
		// check_running fails until the node has booted. RabbitMQ 3.10.8
		// (Debian's) can hang for good in global_sync when a pod rejoins
		// (rabbitmq-server#6034, fixed in 3.10.10), and ping passes on such
		// a node; the startup probe restarts it. Its budget (6 minutes)
		// outlasts the 5 minutes a booting node waits for its peers' tables,
		// so a slow cluster start is not cut short. Liveness and readiness
		// wait for it.
		StartupProbe: &corev1.ProbeArgs{
			Exec:             &corev1.ExecActionArgs{Command: pulumi.ToStringArray(startupCommand(cfg))},
			PeriodSeconds:    pulumi.Int(10),
			TimeoutSeconds:   pulumi.Int(10),
			FailureThreshold: pulumi.Int(36),
		},
		// ping only asks whether the runtime answers: it passes while a node
		// waits for its peers (which may take minutes), so a slow cluster
		// start is not mistaken for a hung node.
		LivenessProbe: &corev1.ProbeArgs{
			Exec:                &corev1.ExecActionArgs{Command: pulumi.ToStringArray([]string{"rabbitmq-diagnostics", "-q", "ping"})},
			InitialDelaySeconds: pulumi.Int(60),
			PeriodSeconds:       pulumi.Int(30),
			TimeoutSeconds:      pulumi.Int(20),
			FailureThreshold:    pulumi.Int(6),
		},
		Lifecycle: &corev1.LifecycleArgs{
			PreStop: &corev1.LifecycleHandlerArgs{
				Exec: &corev1.ExecActionArgs{Command: pulumi.ToStringArray(preStopCommand(cfg.TerminationGracePeriodSeconds))},
			},
		},
	}
	if len(cfg.Command) > 0 {
		container.Command = pulumi.ToStringArray(cfg.Command)
	}
	setup := corev1.ContainerArgs{
		Name:            pulumi.String("setup-container"),
		Image:           pulumi.String(cfg.Image),
		ImagePullPolicy: pulumi.String(cfg.ImagePullPolicy),
		Command:         pulumi.ToStringArray(cookieSetupCommand),
		SecurityContext: containerSecurityContext(),
		Resources: &corev1.ResourceRequirementsArgs{
			Requests: pulumi.StringMap{"cpu": pulumi.String("100m"), "memory": pulumi.String("64Mi")},
			Limits:   pulumi.StringMap{"cpu": pulumi.String("100m"), "memory": pulumi.String("64Mi")},
		},
		VolumeMounts: corev1.VolumeMountArray{
			corev1.VolumeMountArgs{Name: pulumi.String(volHome), MountPath: pulumi.String(rabbitmqHome)},
			corev1.VolumeMountArgs{Name: pulumi.String(volCookie), MountPath: pulumi.String(cookieMountDir), ReadOnly: pulumi.Bool(true)},
		},
	}
	meta := b.meta(n.StatefulSet())
	meta.Annotations = pulumi.StringMap{waitForAnno: pulumi.String(rolloutComplete(cfg.Replicas))}
	sts, err := appsv1.NewStatefulSet(b.ctx, b.resourceName("server"), &appsv1.StatefulSetArgs{
		Metadata: meta,
		Spec: &appsv1.StatefulSetSpecArgs{
			Replicas:            pulumi.Int(cfg.Replicas),
			ServiceName:         pulumi.String(n.HeadlessService()),
			PodManagementPolicy: pulumi.String("Parallel"),
			UpdateStrategy: &appsv1.StatefulSetUpdateStrategyArgs{
				Type:          pulumi.String("RollingUpdate"),
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategyArgs{Partition: pulumi.Int(0)},
			},
			Selector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(n.SelectorLabels())},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{
					Labels:      pulumi.ToStringMap(n.Labels()),
					Annotations: pulumi.ToStringMap(annotations),
				},
				Spec: &corev1.PodSpecArgs{
					ServiceAccountName:            pulumi.String(n.ServiceAccount()),
					AutomountServiceAccountToken:  pulumi.Bool(true),
					TerminationGracePeriodSeconds: pulumi.Int(int(cfg.TerminationGracePeriodSeconds)),
					SecurityContext:               podSecurityContext(cfg),
					Affinity:                      affinity(cfg, n),
					TopologySpreadConstraints:     topologySpread(n),
					InitContainers:                corev1.ContainerArray{setup},
					Containers:                    corev1.ContainerArray{container},
					Volumes:                       volumes(cfg, n),
				},
			},
			VolumeClaimTemplates: corev1.PersistentVolumeClaimTypeArray{pvcTemplate(cfg, n)},
		},
	}, b.with(pulumi.DependsOn(dependsOn))...)
	if err != nil {
		return nil, fmt.Errorf("StatefulSet %s: %w", n.StatefulSet(), err)
	}
	return sts, nil
}
